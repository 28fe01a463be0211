/** The common input fields of fal's realtime image apps: their ranges, and the app's validation errors. */

/** A field's range; `integer` requires a whole number. */
export interface InputLimit {
    min: number;
    max: number;
    integer?: boolean;
}
export type InputLimits = Readonly<Record<string, InputLimit>>;

/** Ranges of seed, num_inference_steps, strength, guidance_scale, width and height. */
export declare const INPUT_LIMITS: InputLimits;

/** A field out of range or rejected, in words ("seed must be ≥ 0"). */
export interface InputProblem {
    field: string;
    message: string;
}

/** A wire field's name in words (`num_inference_steps` is "steps"). */
export declare function fieldName(field: string): string;
/** The first field of `input` outside `limits`, or null. */
export declare function checkInput(input: Record<string, unknown>, limits?: InputLimits): InputProblem | null;
/** The app's own validation error (pydantic's text in an x-fal-error reason) in words, or null. */
export declare function readValidationError(reason: unknown): InputProblem | null;
