/** @odoo-module **/
/** The pen holder's controls beside the prompt: the seed (typed or drawn at random) and the strength. */
import { Component } from "@odoo/owl";

/** The largest seed the models take. */
export const MAX_SEED = 2 ** 31 - 1;

/** @returns {number} a random seed the models accept */
export function randomSeed() {
    return Math.floor(Math.random() * MAX_SEED);
}

export class InputControls extends Component {
    static template = "llm_fal_ai_realtime.InputControls";
    static props = {
        seed: { type: Number },
        /** 0..1 */
        strength: { type: Number },
        /** `({seed} | {strength}) => void`: a valid new value; anything else typed is ignored. */
        onChange: { type: Function },
    };

    onSeedInput(ev) {
        const seed = parseInt(ev.target.value, 10);
        if (Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED) {
            this.props.onChange({ seed });
        }
    }

    onRandomSeed() {
        this.props.onChange({ seed: randomSeed() });
    }

    onStrengthInput(ev) {
        const strength = parseFloat(ev.target.value);
        if (strength >= 0 && strength <= 1) {
            this.props.onChange({ strength });
        }
    }
}
