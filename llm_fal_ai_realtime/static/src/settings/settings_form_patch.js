/** @odoo-module **/
/**
 * Odoo's settings page asks "Unsaved changes?" before a button runs or the page is left. When saving
 * from that dialog fails (a value the server refuses), Odoo 18's `_confirmSave` never settles its
 * promise, so the button that opened it keeps every button of the form disabled until a reload.
 *
 * This addon's values are the ones it can make fail (a relay URL, app ids, a secret the server
 * checks), so only when one of them was edited does the confirmation settle whatever happens: the
 * error is still shown, the values stay on screen to be corrected, and the button does not run.
 * Every other settings change, on any settings page, keeps Odoo's own `_confirmSave` untouched.
 */
import { _t } from "@web/core/l10n/translation";
import { patch } from "@web/core/utils/patch";
import { SettingsConfirmationDialog } from "@web/webclient/settings_form_view/settings_confirmation_dialog";
import { SettingsFormController } from "@web/webclient/settings_form_view/settings_form_controller";

const BLOCK_FIELD_PREFIX = "fal_realtime_";

/**
 * Whether a value of this addon's settings block differs from what the page opened with.
 * @param {import("@web/model/relational_model/record").Record} record the settings record
 */
export function blockEdited(record) {
    const initial = record._initialChanges; // a settings record is new: its opening values
    if (!initial) {
        return false;
    }
    return Object.keys(record.fields)
        .filter((name) => name.startsWith(BLOCK_FIELD_PREFIX))
        .some((name) => (record.data[name] || false) !== (initial[name] || false));
}

patch(SettingsFormController.prototype, {
    async _confirmSave() {
        if (!blockEdited(this.model.root)) {
            return super._confirmSave(...arguments);
        }
        let proceed = true;
        await new Promise((resolve) => {
            this.dialogService.add(SettingsConfirmationDialog, {
                body: _t("Would you like to save your changes?"),
                confirm: async () => {
                    proceed = false; // saving reloads the page: the button's own action does not run
                    try {
                        await this.save();
                    } finally {
                        resolve();
                    }
                },
                cancel: async () => {
                    try {
                        await this.model.root.discard();
                        await this.model.root.save();
                    } catch (error) {
                        proceed = false;
                        throw error;
                    } finally {
                        resolve();
                    }
                },
                stayHere: () => {
                    proceed = false;
                    resolve();
                },
            });
        });
        return proceed;
    },
});
