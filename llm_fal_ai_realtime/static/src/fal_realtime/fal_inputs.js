/**
 * The common input fields of fal's realtime image apps: their ranges, checked before an input is
 * sent, and the app's own validation error (pydantic's text in an x-fal-error) read as the same kind
 * of problem, `{field, message}`, in words a person can act on ("seed must be ≥ 0").
 *
 * The browser client (`fal_realtime.js`) uses these and re-exports them.
 *
 * @module fal_inputs
 */

/**
 * Ranges of the common input fields of fal's realtime image apps (the embedded `local/preview`
 * takes the same, with sizes up to 1024). `send()` refuses an input outside them; a page narrows or
 * adds fields with the `limits` option, e.g. `{num_inference_steps: {min: 1, max: 8, integer: true}}`.
 */
export const INPUT_LIMITS = Object.freeze({
    seed: Object.freeze({ min: 0, max: 2 ** 32 - 1, integer: true }),
    num_inference_steps: Object.freeze({ min: 1, max: 50, integer: true }),
    strength: Object.freeze({ min: 0, max: 1 }),
    guidance_scale: Object.freeze({ min: 0, max: 20 }),
    width: Object.freeze({ min: 64, max: 2048, integer: true }),
    height: Object.freeze({ min: 64, max: 2048, integer: true }),
});

/** What people call the wire fields, in messages. */
const FIELD_NAMES = Object.freeze({ num_inference_steps: "steps", guidance_scale: "guidance scale" });

/** A wire field's name in words (`num_inference_steps` is "steps"). */
export function fieldName(field) {
    return FIELD_NAMES[field] || field.replaceAll("_", " ");
}

/**
 * The first field of `input` outside `limits`, as `{field, message}`, or null when all are in range.
 * `null` and `undefined` values are absent fields (the app's default applies).
 */
export function checkInput(input, limits = INPUT_LIMITS) {
    for (const [field, limit] of Object.entries(limits)) {
        const value = input[field];
        if (value === null || value === undefined) {
            continue;
        }
        const name = fieldName(field);
        let problem = "";
        if (typeof value !== "number" || Number.isNaN(value)) {
            problem = "must be a number";
        } else if (limit.integer && !Number.isInteger(value)) {
            problem = "must be a whole number";
        } else if (value < limit.min) {
            problem = `must be ≥ ${limit.min}`;
        } else if (value > limit.max) {
            problem = `must be ≤ ${limit.max}`;
        }
        if (problem) {
            return { field, message: `${name} ${problem}` };
        }
    }
    return null;
}

const VALIDATION_ERROR = /^\d+ validation errors? for \S+\r?\n/;
const COMPARISONS = [
    ["greater than or equal to", "≥"], ["less than or equal to", "≤"], ["greater than", ">"], ["less than", "<"],
];

/**
 * The app's own validation error (pydantic's text, which fal's SDK sends as the x-fal-error reason)
 * in words, as `{field, message}` ("seed must be ≥ 0"); null for any other reason.
 */
export function readValidationError(reason) {
    if (typeof reason !== "string" || !VALIDATION_ERROR.test(reason)) {
        return null;
    }
    const lines = reason.split(/\r?\n/);
    const at = lines.findIndex((line, index) => index > 0 && line && !line.startsWith(" "));
    if (at < 0 || !lines[at + 1]) {
        return null;
    }
    const field = lines[at].trim().split(".")[0];
    let words = lines[at + 1].trim().replace(/\s*\[type=.*$/, "");
    words = words.replace(/^(Input|Value|String|List|Dictionary) should (be|have) /, "must $2 ");
    for (const [phrase, sign] of COMPARISONS) {
        words = words.replace(`must be ${phrase} `, `must be ${sign} `);
    }
    return { field, message: `${fieldName(field)} ${words}` };
}
