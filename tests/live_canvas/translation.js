/**
 * Stands in for Odoo's `@web/core/l10n/translation` in the bare-OWL harness: `_t` returns the term
 * with `%s` / `%(name)s` filled in, as Odoo's does when no translation is loaded.
 */
export function _t(term, ...values) {
    if (values.length === 1 && values[0] && typeof values[0] === "object") {
        return term.replace(/%\(([^)]+)\)s/g, (match, key) => String(values[0][key]));
    }
    let index = 0;
    return term.replace(/%s/g, () => String(values[index++]));
}
