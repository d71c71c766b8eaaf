/**
 * Codebase chat (`lowentropy/chat`) in a webview panel.
 *
 * Each question goes out with the conversation so far, the editor the user came from (its
 * document, selection and cursor) and a partialResultToken; the answer streams in through
 * `$/progress` ({content: piece}) and ends with the full text and its citations, which are
 * links that open the cited range. Each fenced code block gets an Apply button that runs
 * the apply preview (apply.ts) against that editor.
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { ProgressType } from 'vscode-languageclient/node';
import { GetClient, runningClient } from './client';
import { CHAT, ChatMessage, ChatParams, ChatResult } from './protocol';

interface Citation {
  uri: string;
  label: string;
  line: number;
  character: number;
  endLine: number;
  endCharacter: number;
}

type FromWebview =
  | { type: 'ask'; text: string }
  | { type: 'open'; citation: Citation }
  | { type: 'apply'; code: string };

export interface ChatAnswer {
  content: string;
  citations: Citation[];
  /** The streamed pieces, joined. */
  streamed: string;
  pieces: number;
}

export class Chat implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private history: ChatMessage[] = [];
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly getClient: GetClient) {
    this.disposables.push(
      vscode.commands.registerCommand('lowentropy.chat', (question?: string) =>
        this.open(typeof question === 'string' ? question : undefined),
      ),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor !== undefined && editor.document.uri.scheme === 'file') {
          this.lastEditor = editor;
        }
      }),
    );
  }

  /** Show the panel; with a question, ask it at once and return the answer. */
  async open(question?: string): Promise<ChatAnswer | undefined> {
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel(
        'lowentropy.chat',
        'lowentropy chat',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: question !== undefined },
        { enableScripts: true, retainContextWhenHidden: true },
      );
      this.panel.webview.html = page(this.panel.webview.cspSource);
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.history = [];
      });
      this.panel.webview.onDidReceiveMessage((message: FromWebview) => this.received(message));
    } else {
      this.panel.reveal(undefined, question !== undefined);
    }
    return question === undefined ? undefined : this.ask(question);
  }

  private async received(message: FromWebview): Promise<void> {
    switch (message.type) {
      case 'ask':
        await this.ask(message.text);
        break;
      case 'open':
        await this.openCitation(message.citation);
        break;
      case 'apply':
        await vscode.commands.executeCommand('lowentropy.apply', {
          sketch: message.code,
          uri: this.lastEditor?.document.uri.toString(),
        });
        break;
    }
  }

  async ask(question: string): Promise<ChatAnswer | undefined> {
    const client = runningClient(this.getClient);
    const panel = this.panel;
    if (client === undefined || panel === undefined || question.trim() === '') {
      return undefined;
    }
    const token = randomUUID();
    const post = (message: unknown) => void panel.webview.postMessage(message);
    this.history.push({ role: 'user', content: question });
    post({ type: 'start', question });
    let pieces = 0;
    let streamed = '';
    const progress = client.onProgress(new ProgressType<{ content?: string }>(), token, (value) => {
      if (typeof value.content === 'string' && value.content !== '') {
        pieces += 1;
        streamed += value.content;
        post({ type: 'piece', text: value.content });
      }
    });
    try {
      const result = await client.sendRequest<ChatResult>(CHAT, this.params(token));
      this.history.push({ role: 'assistant', content: result.content });
      const citations = result.citations.map((location) => citation(location));
      post({ type: 'done', content: result.content, citations });
      return { content: result.content, citations, streamed, pieces };
    } catch (error) {
      this.history.pop();
      post({ type: 'error', message: String(error instanceof Error ? error.message : error) });
      return undefined;
    } finally {
      progress.dispose();
    }
  }

  private params(token: string): ChatParams {
    const params: ChatParams = { messages: [...this.history], partialResultToken: token };
    const editor = this.lastEditor;
    const client = this.getClient();
    if (editor !== undefined && client !== undefined && !editor.document.isClosed) {
      const c2p = client.code2ProtocolConverter;
      params.context = {
        textDocument: { uri: editor.document.uri.toString(), version: editor.document.version },
        position: c2p.asPosition(editor.selection.active),
        ...(editor.selection.isEmpty ? {} : { range: c2p.asRange(editor.selection) }),
      };
    }
    return params;
  }

  private async openCitation(cited: Citation): Promise<void> {
    const range = new vscode.Range(cited.line, cited.character, cited.endLine, cited.endCharacter);
    const editor = await vscode.window.showTextDocument(vscode.Uri.parse(cited.uri), {
      viewColumn: this.lastEditor?.viewColumn ?? vscode.ViewColumn.One,
      selection: range,
    });
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

function citation(location: { uri: string; range: { start: Pos; end: Pos } }): Citation {
  const uri = vscode.Uri.parse(location.uri);
  const name = uri.scheme === 'file' ? vscode.workspace.asRelativePath(uri) : location.uri;
  return {
    uri: location.uri,
    label: `${name}:${location.range.start.line + 1}-${location.range.end.line + 1}`,
    line: location.range.start.line,
    character: location.range.start.character,
    endLine: location.range.end.line,
    endCharacter: location.range.end.character,
  };
}

interface Pos {
  line: number;
  character: number;
}

/** The panel's page: a transcript, a text box, and a script that renders the stream. */
function page(cspSource: string): string {
  const nonce = randomUUID().replace(/-/g, '');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}';">
<style>
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 8px; }
  .turn { margin: 8px 0; white-space: pre-wrap; }
  .question { font-weight: bold; }
  .answer pre { background: var(--vscode-textCodeBlock-background); padding: 6px; overflow-x: auto; }
  .citations a { display: inline-block; margin-right: 8px; cursor: pointer; }
  .error { color: var(--vscode-errorForeground); }
  form { position: sticky; bottom: 0; background: var(--vscode-editor-background); padding: 6px 0; }
  textarea { width: 100%; box-sizing: border-box; color: var(--vscode-input-foreground);
    background: var(--vscode-input-background); border: 1px solid var(--vscode-input-border); }
</style></head>
<body>
<div id="log"></div>
<form id="form"><textarea id="input" rows="3" placeholder="Ask about the code (Enter sends, Shift+Enter for a new line)"></textarea></form>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const log = document.getElementById('log');
  const input = document.getElementById('input');
  let answer = null;
  let streamed = '';
  function turn(cls, text) {
    const div = document.createElement('div');
    div.className = 'turn ' + cls;
    div.textContent = text;
    log.appendChild(div);
    div.scrollIntoView();
    return div;
  }
  function render(div, content) {
    div.textContent = '';
    const parts = content.split(/\`\`\`[^\\n]*\\n([\\s\\S]*?)\`\`\`/);
    parts.forEach((part, i) => {
      if (i % 2 === 0) { div.appendChild(document.createTextNode(part)); return; }
      const pre = document.createElement('pre');
      pre.textContent = part;
      const apply = document.createElement('button');
      apply.textContent = 'Apply';
      apply.title = 'Apply this code to the editor (with a diff preview)';
      apply.onclick = () => vscode.postMessage({ type: 'apply', code: part });
      div.appendChild(pre);
      div.appendChild(apply);
    });
  }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      const text = input.value.trim();
      if (text) { vscode.postMessage({ type: 'ask', text }); input.value = ''; }
    }
  });
  window.addEventListener('message', (event) => {
    const m = event.data;
    if (m.type === 'start') { turn('question', m.question); answer = turn('answer', '…'); streamed = ''; }
    else if (m.type === 'piece' && answer) { streamed += m.text; answer.textContent = streamed; answer.scrollIntoView(); }
    else if (m.type === 'done' && answer) {
      render(answer, m.content);
      if (m.citations.length) {
        const div = document.createElement('div');
        div.className = 'citations';
        for (const c of m.citations) {
          const a = document.createElement('a');
          a.textContent = c.label;
          a.title = 'Open ' + c.label;
          a.onclick = () => vscode.postMessage({ type: 'open', citation: c });
          div.appendChild(a);
        }
        answer.appendChild(div);
      }
      answer = null;
    } else if (m.type === 'error') {
      if (answer) { answer.remove(); answer = null; }
      turn('error', 'lowentropy: ' + m.message);
    }
  });
</script>
</body></html>`;
}
