/**
 * Apply and edit selection (`lowentropy/apply`, `lowentropy/editSelection`) with a diff
 * preview: the proposed text is a virtual document (`lowentropy-proposed:`) shown against
 * the file with `vscode.diff`; Accept (✓ in the editor title, or Ctrl+Enter) writes the
 * server's edit if the file has not changed since, Reject (✗, Ctrl+Backspace) drops it, as does
 * closing the diff editor. Only verified results are offered; otherwise the server's
 * reason is shown.
 *
 * The server's own commands `lowentropy.applySketch` and `lowentropy.editSelection` (its
 * code actions) would write without a preview; the client's middleware routes them here,
 * and asks for the instruction that an editSelection code action lacks.
 */
import * as vscode from 'vscode';
import type { ExecuteCommandSignature } from 'vscode-languageclient/node';
import { GetClient, runningClient } from './client';
import {
  APPLY,
  APPLY_COMMAND,
  ApplyParams,
  ApplyResult,
  EDIT_COMMAND,
  EDIT_SELECTION,
  EditSelectionParams,
} from './protocol';

export const PROPOSED_SCHEME = 'lowentropy-proposed';
const CONTEXT_KEY = 'lowentropy.previewActive';

/** What `lowentropy.apply` takes: the sketch (else the clipboard), the file (else the active one). */
export interface ApplyArgs {
  sketch?: string;
  uri?: string;
  range?: vscode.Range;
}

interface Pending {
  document: vscode.TextDocument;
  version: number;
  result: ApplyResult;
  proposed: vscode.Uri;
  settle: (accepted: boolean) => void;
}

export type PreviewOutcome = 'accepted' | 'rejected' | 'refused' | 'failed';

export class Apply implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly proposals = new Map<string, string>();
  private readonly changes = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changes.event;
  private pending: Pending | undefined;
  private readonly shownEmitter = new vscode.EventEmitter<vscode.Uri>();
  /** Fires when a preview is on screen, with its proposed document's URI. */
  readonly onDidShowPreview = this.shownEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private serial = 0;

  constructor(private readonly getClient: GetClient) {
    this.disposables.push(
      this.changes,
      this.shownEmitter,
      vscode.workspace.registerTextDocumentContentProvider(PROPOSED_SCHEME, this),
      vscode.commands.registerCommand('lowentropy.apply', (args?: ApplyArgs) => this.apply(args)),
      vscode.commands.registerCommand('lowentropy.edit', () => this.editSelection()),
      vscode.commands.registerCommand('lowentropy.preview.accept', () => this.settle(true)),
      vscode.commands.registerCommand('lowentropy.preview.reject', () => this.settle(false)),
      vscode.window.tabGroups.onDidChangeTabs((event) => {
        const proposed = this.pending?.proposed.toString();
        const closed = event.closed.some(
          (tab) =>
            tab.input instanceof vscode.TabInputTextDiff &&
            tab.input.modified.toString() === proposed,
        );
        if (closed) {
          void this.settle(false);
        }
      }),
    );
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.proposals.get(uri.toString()) ?? '';
  }

  /** Apply a sketch to a file: the server places it, the user accepts or rejects the diff. */
  async apply(args: ApplyArgs = {}): Promise<PreviewOutcome> {
    const document = await target(args.uri);
    if (document === undefined) {
      void vscode.window.showWarningMessage('lowentropy: open the file to apply to first');
      return 'failed';
    }
    const sketch = args.sketch ?? (await vscode.env.clipboard.readText());
    if (sketch.trim() === '') {
      void vscode.window.showWarningMessage('lowentropy: nothing to apply (the sketch is empty)');
      return 'failed';
    }
    const client = runningClient(this.getClient);
    if (client === undefined) {
      return 'failed';
    }
    const params: ApplyParams = {
      textDocument: { uri: document.uri.toString(), version: document.version },
      sketch,
      range: args.range ? client.code2ProtocolConverter.asRange(args.range) : null,
    };
    return this.ask(APPLY, params, document, 'apply');
  }

  /** Rewrite the selected lines as the user says (asked with an input box). */
  async editSelection(preset?: EditSelectionParams): Promise<PreviewOutcome> {
    const client = runningClient(this.getClient);
    if (client === undefined) {
      return 'failed';
    }
    let document: vscode.TextDocument | undefined;
    let range: EditSelectionParams['range'];
    if (preset !== undefined) {
      document = await target(preset.textDocument.uri);
      range = preset.range;
    } else {
      const editor = vscode.window.activeTextEditor;
      document = editor?.document;
      range = client.code2ProtocolConverter.asRange(editor?.selection ?? new vscode.Range(0, 0, 0, 0));
    }
    if (document === undefined) {
      void vscode.window.showWarningMessage('lowentropy: select the code to edit first');
      return 'failed';
    }
    const instruction =
      preset?.instruction?.trim() ||
      (await vscode.window.showInputBox({
        title: 'lowentropy: edit selection',
        prompt: 'What should change in the selected lines?',
        placeHolder: 'e.g. add type hints',
        ignoreFocusOut: true,
      }));
    if (!instruction?.trim()) {
      return 'failed';
    }
    const params: EditSelectionParams = {
      textDocument: { uri: document.uri.toString(), version: document.version },
      range,
      instruction,
    };
    return this.ask(EDIT_SELECTION, params, document, 'edit');
  }

  /** The language client's middleware: the server's editing commands go through the preview. */
  executeCommand = async (
    command: string,
    args: unknown[],
    next: ExecuteCommandSignature,
  ): Promise<unknown> => {
    const [first] = args as [Record<string, unknown> | undefined];
    if (command === APPLY_COMMAND && first !== undefined) {
      const params = first as unknown as ApplyParams;
      const document = await target(params.textDocument.uri);
      return document && this.ask(APPLY, params, document, 'apply');
    }
    if (command === EDIT_COMMAND && first !== undefined) {
      return this.editSelection(first as unknown as EditSelectionParams);
    }
    return next(command, args);
  };

  private async ask(
    method: string,
    params: ApplyParams | EditSelectionParams,
    document: vscode.TextDocument,
    title: string,
  ): Promise<PreviewOutcome> {
    const client = runningClient(this.getClient);
    if (client === undefined) {
      return 'failed';
    }
    let result: ApplyResult;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `lowentropy: ${title}…` },
        () => client.sendRequest<ApplyResult>(method, params),
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(`lowentropy: ${title} failed: ${message}`);
      return 'failed';
    }
    if (!result.verified) {
      void vscode.window.showWarningMessage(
        `lowentropy: ${title} refused: ${result.reason ?? 'the result did not verify'}`,
      );
      return 'refused';
    }
    return this.preview(document, result, title);
  }

  /** Show the proposed text against the file; resolves once accepted or rejected. */
  private async preview(
    document: vscode.TextDocument,
    result: ApplyResult,
    title: string,
  ): Promise<PreviewOutcome> {
    const client = this.getClient();
    if (client === undefined) {
      return 'failed';
    }
    this.settle(false); // one preview at a time
    const edit = await client.protocol2CodeConverter.asWorkspaceEdit(result.edit);
    const proposed = vscode.Uri.from({
      scheme: PROPOSED_SCHEME,
      path: document.uri.path,
      query: `n=${++this.serial}`,
    });
    this.proposals.set(proposed.toString(), proposedText(document, edit));
    this.changes.fire(proposed);
    const accepted = new Promise<boolean>((resolve) => {
      this.pending = { document, version: result.version, result, proposed, settle: resolve };
    });
    await vscode.commands.executeCommand('setContext', CONTEXT_KEY, true);
    const name = vscode.workspace.asRelativePath(document.uri);
    await vscode.commands.executeCommand(
      'vscode.diff',
      document.uri,
      proposed,
      `${name} ↔ lowentropy ${title} (✓ accept, ✗ reject)`,
      { preview: true },
    );
    this.shownEmitter.fire(proposed);
    vscode.window.setStatusBarMessage(
      `lowentropy: ${title} of ${name}: ✓ accept (Ctrl+Enter), ✗ reject (Ctrl+Backspace)`,
      accepted,
    );
    const ok = await accepted;
    if (!ok) {
      return 'rejected';
    }
    if (document.version !== result.version) {
      void vscode.window.showWarningMessage(
        `lowentropy: ${name} changed since the ${title} was computed; nothing was written`,
      );
      return 'failed';
    }
    return (await vscode.workspace.applyEdit(edit)) ? 'accepted' : 'failed';
  }

  /** Settle the open preview (if any) and close its diff editor. */
  private async settle(accepted: boolean): Promise<void> {
    const pending = this.pending;
    if (pending === undefined) {
      return;
    }
    this.pending = undefined;
    await vscode.commands.executeCommand('setContext', CONTEXT_KEY, false);
    const tabs = vscode.window.tabGroups.all.flatMap((group) => group.tabs);
    const diffTabs = tabs.filter(
      (tab) =>
        tab.input instanceof vscode.TabInputTextDiff &&
        tab.input.modified.toString() === pending.proposed.toString(),
    );
    await vscode.window.tabGroups.close(diffTabs);
    this.proposals.delete(pending.proposed.toString());
    await vscode.window.showTextDocument(pending.document, { preview: false });
    pending.settle(accepted);
  }

  dispose(): void {
    void this.settle(false);
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

/** The document at `uri` (opened if needed), or the active editor's. */
async function target(uri: string | undefined): Promise<vscode.TextDocument | undefined> {
  if (uri !== undefined) {
    return vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
  }
  return vscode.window.activeTextEditor?.document;
}

/** The document's text with the edit's changes to it applied (edits do not overlap). */
export function proposedText(document: vscode.TextDocument, edit: vscode.WorkspaceEdit): string {
  const text = document.getText();
  const changes = edit
    .get(document.uri)
    .filter((change): change is vscode.TextEdit => change instanceof vscode.TextEdit)
    .map((change) => ({
      start: document.offsetAt(change.range.start),
      end: document.offsetAt(change.range.end),
      text: change.newText,
    }))
    .sort((a, b) => b.start - a.start);
  let out = text;
  for (const change of changes) {
    out = out.slice(0, change.start) + change.text + out.slice(change.end);
  }
  return out;
}
