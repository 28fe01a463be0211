/** @odoo-module **/
/** The addon's JSON routes, called the one way every piece of the chat calls them. */
import { rpc } from "@web/core/network/rpc";
import { user } from "@web/core/user";

/**
 * Call one of the addon's JSON routes with the user context (so the server works in the companies the
 * switcher has active); an error becomes an Error with the server's message (what LiveCanvas shows).
 * @param {string} route
 * @param {object} params
 */
export async function callRoute(route, params) {
    try {
        return await rpc(route, { ...params, context: user.context });
    } catch (error) {
        throw new Error(error.data?.message || error.message);
    }
}
