/**
 * Next edit (`lowentropy/nextEdit`): where the user will probably change the code next.
 *
 * The suggestion is drawn with decorations: the range to replace is highlighted and the
 * replacement follows it as faded text (all of it in the hover). Tab accepts it, Shift+Tab
 * jumps to it (or to the suggested next place), Escape dismisses it. A suggestion is asked
 * for after a pause in typing (`lowentropy.client.nextEditDelayMs`) or with Alt+Enter.
 */
import * as vscode from 'vscode';
import { GetClient, runningClient } from './client';
import { NEXT_EDIT, NextEditItem, NextEditResult } from './protocol';

const CONTEXT_KEY = 'lowentropy.nextEditVisible';

interface Shown {
  edits: NextEditItem[];
  jump: vscode.Location | undefined;
}

export class NextEdit implements vscode.Disposable {
  private readonly removed = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
    isWholeLine: false,
  });
  private readonly inserted = vscode.window.createTextEditorDecorationType({
    after: {
      color: new vscode.ThemeColor('editorGhostText.foreground'),
      backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'),
      margin: '0 0 0 0.5em',
    },
  });
  private shown: Shown | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: vscode.CancellationTokenSource | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly getClient: GetClient) {
    this.disposables.push(
      this.removed,
      this.inserted,
      vscode.commands.registerCommand('lowentropy.nextEdit', () => this.request(true)),
      vscode.commands.registerCommand('lowentropy.nextEdit.accept', () => this.accept()),
      vscode.commands.registerCommand('lowentropy.nextEdit.jump', () => this.jump()),
      vscode.commands.registerCommand('lowentropy.nextEdit.dismiss', () => this.clear()),
      vscode.workspace.onDidChangeTextDocument((event) => this.changed(event)),
      vscode.window.onDidChangeActiveTextEditor((editor) => this.activeChanged(editor)),
    );
  }

  /** Ask the server for a next edit at the cursor of the active editor and show it. */
  async request(explicit: boolean): Promise<NextEditResult | undefined> {
    const editor = vscode.window.activeTextEditor;
    const client = explicit ? runningClient(this.getClient) : this.getClient();
    if (editor === undefined || client === undefined || !client.isRunning()) {
      return undefined;
    }
    this.pending?.cancel();
    const cancel = new vscode.CancellationTokenSource();
    this.pending = cancel;
    const document = editor.document;
    const version = document.version;
    let result: NextEditResult | null;
    try {
      result = await client.sendRequest<NextEditResult | null>(
        NEXT_EDIT,
        {
          textDocument: { uri: document.uri.toString(), version },
          position: client.code2ProtocolConverter.asPosition(editor.selection.active),
        },
        cancel.token,
      );
    } catch (error) {
      if (explicit && !cancel.token.isCancellationRequested) {
        void vscode.window.showErrorMessage(`lowentropy: next edit failed: ${String(error)}`);
      }
      return undefined;
    }
    if (cancel.token.isCancellationRequested || document.version !== version) {
      return undefined;
    }
    const edits = result?.edits ?? [];
    const jump = result?.jump ? client.protocol2CodeConverter.asLocation(result.jump) : undefined;
    if (edits.length === 0 && jump === undefined) {
      this.clear();
      if (explicit) {
        vscode.window.setStatusBarMessage('lowentropy: no next edit here', 3000);
      }
      return result ?? undefined;
    }
    this.show({ edits, jump });
    return result ?? undefined;
  }

  private show(shown: Shown): void {
    this.shown = shown;
    this.paint();
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, true);
  }

  private paint(): void {
    const client = this.getClient();
    for (const editor of vscode.window.visibleTextEditors) {
      const uri = editor.document.uri.toString();
      const mine = (this.shown?.edits ?? []).filter((edit) => edit.textDocument.uri === uri);
      const removed: vscode.DecorationOptions[] = [];
      const inserted: vscode.DecorationOptions[] = [];
      for (const edit of mine) {
        if (client === undefined) {
          break;
        }
        const range = client.protocol2CodeConverter.asRange(edit.range);
        const hover = new vscode.MarkdownString();
        hover.appendMarkdown('**lowentropy: next edit** (Tab accepts, Esc dismisses)\n');
        hover.appendCodeblock(edit.text, editor.document.languageId);
        if (!range.isEmpty) {
          removed.push({ range, hoverMessage: hover });
        }
        const lines = edit.text.split('\n');
        const preview = lines[0] + (lines.length > 1 ? ` … (+${lines.length - 1} lines)` : '');
        inserted.push({
          range: new vscode.Range(range.end, range.end),
          hoverMessage: hover,
          renderOptions: { after: { contentText: preview.length > 0 ? preview : '⌫' } },
        });
      }
      editor.setDecorations(this.removed, removed);
      editor.setDecorations(this.inserted, inserted);
    }
  }

  clear(): void {
    if (this.shown === undefined) {
      return;
    }
    this.shown = undefined;
    this.paint();
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, false);
  }

  /** Apply the shown edits (refusing stale ones), run their commands, then go to the jump. */
  async accept(): Promise<boolean> {
    const shown = this.shown;
    const client = this.getClient();
    if (shown === undefined || client === undefined) {
      return false;
    }
    this.clear();
    const edit = new vscode.WorkspaceEdit();
    for (const item of shown.edits) {
      const uri = vscode.Uri.parse(item.textDocument.uri);
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      const expected = item.textDocument.version;
      if (document !== undefined && expected != null && document.version !== expected) {
        vscode.window.setStatusBarMessage('lowentropy: the next edit is out of date', 3000);
        return false;
      }
      edit.replace(uri, client.protocol2CodeConverter.asRange(item.range), item.text);
    }
    if (shown.edits.length > 0 && !(await vscode.workspace.applyEdit(edit))) {
      return false;
    }
    for (const item of shown.edits) {
      if (item.command) {
        await vscode.commands.executeCommand(item.command.command, ...(item.command.arguments ?? []));
      }
    }
    if (shown.jump !== undefined) {
      await this.reveal(shown.jump);
    }
    return true;
  }

  /** Move the cursor to the first shown edit, or to the suggested next place. */
  async jump(): Promise<void> {
    const shown = this.shown;
    const client = this.getClient();
    if (shown === undefined || client === undefined) {
      return;
    }
    const first = shown.edits[0];
    const target = first
      ? new vscode.Location(
          vscode.Uri.parse(first.textDocument.uri),
          client.protocol2CodeConverter.asRange(first.range),
        )
      : shown.jump;
    if (target !== undefined) {
      await this.reveal(target);
      this.paint();
    }
  }

  private async reveal(location: vscode.Location): Promise<void> {
    const editor = await vscode.window.showTextDocument(location.uri, { preview: false });
    editor.selection = new vscode.Selection(location.range.start, location.range.start);
    editor.revealRange(location.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private activeChanged(editor: vscode.TextEditor | undefined): void {
    const uri = editor?.document.uri.toString();
    if (this.shown?.edits.some((edit) => edit.textDocument.uri === uri)) {
      this.paint(); // a jump to the file the edit is in
    } else {
      this.clear();
    }
  }

  private changed(event: vscode.TextDocumentChangeEvent): void {
    const editor = vscode.window.activeTextEditor;
    if (event.contentChanges.length === 0 || editor?.document !== event.document) {
      return;
    }
    this.clear();
    clearTimeout(this.timer);
    const delay = vscode.workspace
      .getConfiguration('lowentropy')
      .get<number>('client.nextEditDelayMs', 600);
    if (delay >= 0) {
      this.timer = setTimeout(() => void this.request(false), delay);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.pending?.cancel();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}
