/**
 * The attributes of `<fal-live-canvas>` and the properties that mirror them: which set an input
 * field (and how their text is read), which choose the connection, and the properties a page set
 * before the element was defined, taken over when it is.
 *
 * @module fal_live_canvas_attributes
 */

/** Attributes (and properties) that set an input field: name -> [wire field, parse]. */
export const INPUT_ATTRIBUTES = Object.freeze({
    prompt: ["prompt", String],
    seed: ["seed", (value) => Number.parseInt(value, 10)],
    strength: ["strength", Number],
    steps: ["num_inference_steps", (value) => Number.parseInt(value, 10)],
});

/** Attributes that choose the connection, mirrored as properties of the same (camelCase) name. */
export const CONNECTION_ATTRIBUTES = Object.freeze({
    relay: "relay",
    app: "app",
    ticket: "ticket",
    ticketUrl: "ticket-url",
    mode: "mode",
    session: "session",
});

/** Attributes that only change how the element looks. */
const VIEW_ATTRIBUTES = ["width", "height", "fit", "hud", "label"];

/** Every attribute the element reacts to. */
export const OBSERVED_ATTRIBUTES = Object.freeze([
    ...Object.values(CONNECTION_ATTRIBUTES), ...Object.keys(INPUT_ATTRIBUTES), ...VIEW_ATTRIBUTES,
]);

/** Properties with a setter that a page may set before this module loads. */
const EARLY_PROPERTIES = [...Object.keys(CONNECTION_ATTRIBUTES), ...Object.keys(INPUT_ATTRIBUTES), "getTicket", "limits"];

/** Give `ElementClass` a property per connection and input attribute (`ticketUrl` for `ticket-url`). */
export function defineAttributeProperties(ElementClass) {
    for (const [property, attribute] of Object.entries(CONNECTION_ATTRIBUTES)) {
        Object.defineProperty(ElementClass.prototype, property, {
            get() {
                return this.getAttribute(attribute) ?? "";
            },
            set(value) {
                if (value === null || value === undefined) {
                    this.removeAttribute(attribute);
                } else {
                    this.setAttribute(attribute, value);
                }
            },
        });
    }
    for (const [property, [field, parse]] of Object.entries(INPUT_ATTRIBUTES)) {
        Object.defineProperty(ElementClass.prototype, property, {
            get() {
                return this.input[field];
            },
            set(value) {
                this.setInput({ [field]: value === null || value === undefined ? undefined : parse(value) });
            },
        });
    }
}

/**
 * Run the element's setters for properties a page set before the element was defined: those landed
 * on the element itself and hide the class's accessors.
 */
export function adoptEarlyProperties(element) {
    for (const name of EARLY_PROPERTIES) {
        if (Object.hasOwn(element, name)) {
            const value = element[name];
            delete element[name];
            element[name] = value;
        }
    }
}
