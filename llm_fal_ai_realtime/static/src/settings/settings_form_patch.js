/** @odoo-module **/
/**
 * Odoo's settings page asks "Unsaved changes?" before a button runs or the page is left. When saving
 * from that dialog failed (a value the server refuses), its promise never settled, so the button that
 * opened it kept every button of the form (Save, Discard, Test connection...) disabled until a reload.
 * This is Odoo 18's `_confirmSave`, except that the wait settles whatever happens: the error is still
 * shown, the values stay on screen to be corrected, and the button does not run.
 */
import { _t } from "@web/core/l10n/translation";
import { patch } from "@web/core/utils/patch";
import { SettingsConfirmationDialog } from "@web/webclient/settings_form_view/settings_confirmation_dialog";
import { SettingsFormController } from "@web/webclient/settings_form_view/settings_form_controller";

patch(SettingsFormController.prototype, {
    async _confirmSave() {
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
