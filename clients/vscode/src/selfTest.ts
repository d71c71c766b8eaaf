/**
 * The end-to-end self-test (tests/test_vscode.py), on only when LOWENTROPY_VSCODE_SELFTEST
 * names a folder. It reads `input.json` there, drives the real workbench through commands
 * and, for what a user does with keys and clicks, asks the browser driver
 * (tests/editors/vscode_driver.mjs) through `ui-N.request.json` / `ui-N.reply.json`; it
 * writes what it saw to `result.json`.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Apply } from './apply';
import type { Chat } from './chat';
import type { GetClient } from './client';
import type { InlineAnswer, InlineWatcher } from './inline';
import type { Status } from './status';

export const SELF_TEST_ENV = 'LOWENTROPY_VSCODE_SELFTEST';

interface Input {
  tabFile: string;
  tabCursor: [number, number];
  applyFile: string;
  sketch: string;
  question: string;
}

interface Parts {
  getClient: GetClient;
  inline: InlineWatcher;
  apply: Apply;
  chat: Chat;
  status: Status;
}

interface UiRequest {
  waitFor: string;
  press?: string;
  click?: boolean;
  timeoutMs: number;
}

interface UiReply {
  ok: boolean;
  text?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(100);
  }
}

class Browser {
  private serial = 0;
  constructor(private readonly dir: string) {}

  /** Ask the driver to wait for an element, then press a key or click it. */
  async ask(request: UiRequest): Promise<UiReply> {
    const n = ++this.serial;
    const reply = path.join(this.dir, `ui-${n}.reply.json`);
    const tmp = path.join(this.dir, `ui-${n}.request.tmp`);
    await fs.writeFile(tmp, JSON.stringify(request));
    await fs.rename(tmp, path.join(this.dir, `ui-${n}.request.json`));
    const deadline = Date.now() + request.timeoutMs + 15000;
    while (Date.now() < deadline) {
      try {
        return JSON.parse(await fs.readFile(reply, 'utf8')) as UiReply;
      } catch {
        await sleep(200);
      }
    }
    return { ok: false, error: 'the browser driver did not answer' };
  }
}

export async function runSelfTest(dir: string, parts: Parts): Promise<void> {
  const record: Record<string, unknown> = { steps: [] as string[] };
  const steps = record.steps as string[];
  const started = Date.now();
  try {
    const input = JSON.parse(await fs.readFile(path.join(dir, 'input.json'), 'utf8')) as Input;
    const browser = new Browser(dir);
    await until('the language client', 60000, () =>
      parts.getClient()?.isRunning() ? true : undefined,
    );
    steps.push('client');
    record.tab = await tab(input, parts, browser);
    steps.push('tab');
    record.apply = await applySketch(input, parts, browser);
    steps.push('apply');
    record.chat = await parts.chat.open(input.question);
    steps.push('chat');
    record.status = await parts.status.fetch();
    steps.push('status');
  } catch (error) {
    record.error = error instanceof Error ? `${error.message}\n${error.stack}` : String(error);
  }
  record.seconds = (Date.now() - started) / 1000;
  await fs.writeFile(path.join(dir, 'result.tmp'), JSON.stringify(record, null, 2));
  await fs.rename(path.join(dir, 'result.tmp'), path.join(dir, 'result.json'));
}

/** Ghost text at the cursor: trigger it, see it drawn, accept it with Tab, save. */
async function tab(input: Input, parts: Parts, browser: Browser): Promise<Record<string, unknown>> {
  // The driver clicked the file in the Explorer; that opens it in a preview editor.
  const wanted = input.tabFile;
  const editor0 = await until(`${wanted} in the active editor`, 60000, () => {
    const editor = vscode.window.activeTextEditor;
    return editor?.document.uri.fsPath.endsWith(path.sep + wanted) ? editor : undefined;
  });
  const document = editor0.document;
  const opened = document.getText();
  // Focus the editor itself (the click left focus in the Explorer) and put the cursor there.
  const editor = await vscode.window.showTextDocument(document, { preview: false });
  const [line, character] = input.tabCursor;
  const cursor = new vscode.Position(line, character);
  editor.selection = new vscode.Selection(cursor, cursor);

  let answer: InlineAnswer | undefined;
  for (let attempt = 0; attempt < 4 && answer === undefined; attempt++) {
    const next = new Promise<InlineAnswer>((resolve) => {
      const sub = parts.inline.onDidAnswer((a) => {
        if (a.uri === document.uri.toString() && a.line === line && a.character === character) {
          sub.dispose();
          resolve(a);
        }
      });
    });
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    const got = await Promise.race([
      next,
      sleep(attempt === 0 ? 120000 : 30000).then(() => undefined),
    ]);
    if (got && got.items.length > 0 && got.items[0] !== '') {
      answer = got;
    }
  }
  if (answer === undefined) {
    throw new Error('the server gave no inline suggestion at the cursor');
  }
  const changed = new Promise<void>((resolve) => {
    const sub = vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.document === document && event.contentChanges.length > 0) {
        sub.dispose();
        resolve();
      }
    });
  });
  // Tab is VS Code's key for editor.action.inlineSuggest.commit while ghost text shows.
  const ghost = await browser.ask({
    waitFor: '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text',
    press: 'Tab',
    timeoutMs: 20000,
  });
  let acceptedWith = 'Tab';
  if (!ghost.ok || (await Promise.race([changed.then(() => true), sleep(5000)])) !== true) {
    acceptedWith = 'commit';
    await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
    await Promise.race([changed, sleep(5000)]);
  }
  const text = document.getText();
  const saved = await document.save();
  return { opened, suggestion: answer.items[0], ghost, acceptedWith, text, saved };
}

/** Apply the sketch to the file, see the diff preview, click its Accept action, save. */
async function applySketch(
  input: Input,
  parts: Parts,
  browser: Browser,
): Promise<Record<string, unknown>> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (folder === undefined) {
    throw new Error('no workspace folder');
  }
  const uri = vscode.Uri.joinPath(folder.uri, input.applyFile);
  const document = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(document, { preview: false });
  const before = document.getText();
  const shown = new Promise<vscode.Uri>((resolve) => {
    const sub = parts.apply.onDidShowPreview((proposed) => {
      sub.dispose();
      resolve(proposed);
    });
  });
  const outcome = parts.apply.apply({ sketch: input.sketch, uri: uri.toString() });
  const proposedUri = await Promise.race([
    shown,
    outcome.then((o) => {
      throw new Error(`apply ended without a preview: ${o}`);
    }),
  ]);
  const proposed = (await vscode.workspace.openTextDocument(proposedUri)).getText();
  const diffOpen = vscode.window.tabGroups.all
    .flatMap((group) => group.tabs)
    .some(
      (t) =>
        t.input instanceof vscode.TabInputTextDiff &&
        t.input.modified.toString() === proposedUri.toString() &&
        t.input.original.toString() === uri.toString(),
    );
  const click = await browser.ask({
    waitFor: '.editor-actions .action-label[aria-label^="Accept Edit"]',
    click: true,
    timeoutMs: 20000,
  });
  if (!click.ok) {
    await vscode.commands.executeCommand('lowentropy.preview.accept');
  }
  const result = await outcome;
  const text = document.getText();
  const saved = await document.save();
  return { before, proposed, diffOpen, click, outcome: result, text, saved };
}
