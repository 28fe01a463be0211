// Drive Debian's firefox-esr headless over WebDriver BiDi (puppeteer-core, no browser download) for
// tests/test_firefox.py. Reads one job as JSON on stdin:
//
//   {"url": "...", "timeoutMs": 45000, "firefox": "/usr/bin/firefox-esr", "steps": [step, ...]}
//
// step, one of ("expr" is a JavaScript expression, awaited; `timeoutMs` bounds a waitFor, default 15 s):
//   {"eval": expr}                          its value, as JSON
//   {"waitFor": expr}                       polls until truthy; that value
//   {"click": selector}   {"press": key}   {"type": text, "delay": ms}   {"sleep": ms}
//   {"screenshot": path}
//
// Prints one JSON object on stdout and exits 0 when every step ran, 1 when one failed or the job
// timed out: {ok, browser, results: [value per step], errors: [console errors and uncaught
// exceptions], failed: {step, index, message}?}. Assertions are the caller's. Each run has a fresh
// temporary profile (puppeteer's default, removed at close), and Firefox is closed, or killed, on
// every way out, SIGTERM included.
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const job = JSON.parse(readFileSync(0, "utf8"));
job.timeoutMs ??= 45_000;
const STEP_TIMEOUT_MS = 15_000;
const out = { ok: false, browser: null, results: [], errors: [] };
let browser = null;

async function run() {
    browser = await puppeteer.launch({
        browser: "firefox",
        executablePath: job.firefox || "/usr/bin/firefox-esr",
        headless: true,
        handleSIGINT: false, // finish() closes Firefox on signals
        handleSIGTERM: false,
        handleSIGHUP: false,
    });
    out.browser = await browser.version();
    const page = await browser.newPage();
    page.on("pageerror", (error) => out.errors.push(`pageerror: ${error.message ?? error}`));
    page.on("console", (message) => {
        if (message.type() === "error") out.errors.push(`console.error: ${message.text()}`);
    });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    await page.goto(job.url, { waitUntil: "load" });
    for (const [index, step] of (job.steps ?? []).entries()) {
        const timeout = step.timeoutMs ?? STEP_TIMEOUT_MS;
        try {
            out.results.push(await runStep(page, step, timeout));
        } catch (error) {
            out.failed ??= { step, index, message: String(error?.message ?? error) };
            return;
        }
    }
    out.ok = out.failed === undefined;
}

async function runStep(page, step, timeout) {
    if ("eval" in step) return await page.evaluate(step.eval);
    if ("waitFor" in step) {
        const handle = await page.waitForFunction(step.waitFor, { timeout, polling: 50 });
        const value = await handle.jsonValue();
        await handle.dispose();
        return value;
    }
    if ("click" in step) return void (await page.click(step.click));
    if ("press" in step) return void (await page.keyboard.press(step.press));
    if ("type" in step) return void (await page.keyboard.type(step.type, { delay: step.delay ?? 0 }));
    if ("sleep" in step) return void (await new Promise((resolve) => setTimeout(resolve, step.sleep)));
    if ("screenshot" in step) return void (await page.screenshot({ path: step.screenshot }));
    throw new Error(`unknown step ${JSON.stringify(step)}`);
}

async function close() {
    if (browser === null) return;
    const child = browser.process();
    const closed = browser.close().catch(() => {});
    const late = new Promise((resolve) => setTimeout(resolve, 5_000, "late"));
    if ((await Promise.race([closed, late])) === "late") child?.kill("SIGKILL");
}

// The one way out: on success, a failed step, the deadline or a signal. Closes Firefox, prints, exits.
let finishing = null;
function finish(failure) {
    if (failure !== undefined) out.failed ??= { step: null, index: out.results.length, message: failure };
    finishing ??= close().then(() => {
        out.ok = out.ok && out.failed === undefined;
        // Exit now: a step abandoned at the deadline may still hold a timer.
        process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(out.ok ? 0 : 1));
    });
    return finishing;
}

for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => finish(`stopped by ${signal}`));
setTimeout(() => finish(`timed out after ${job.timeoutMs} ms`), job.timeoutMs);
run().then(() => finish(), (error) => finish(String(error?.message ?? error)));
