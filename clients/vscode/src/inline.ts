/**
 * Ghost text: the language client turns the server's `textDocument/inlineCompletion` into
 * VS Code inline suggestions by itself (vscode-languageclient 11; 9.x sent an invalid
 * `triggerKind`). Accepting one runs the item's command, `lowentropy.acceptCompletion`,
 * which the client registered from the server's executeCommandProvider, so the server
 * learns of the acceptance.
 *
 * This module only watches the answers: the number of suggestions and the first one,
 * for the status item's tooltip and the self-test. VS Code's stable API has no hook for
 * "shown" or "partly accepted", so `textDocument/didShowCompletion` and
 * `didPartiallyAcceptCompletion` are not sent.
 */
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';

export interface InlineAnswer {
  uri: string;
  line: number;
  character: number;
  items: string[];
}

export class InlineWatcher implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<InlineAnswer>();
  /** Fires with every answer the server gave (also empty ones). */
  readonly onDidAnswer = this.emitter.event;
  last: InlineAnswer | undefined;

  readonly middleware: Middleware = {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      const result = await next(document, position, context, token);
      const list = Array.isArray(result) ? result : (result?.items ?? []);
      const answer: InlineAnswer = {
        uri: document.uri.toString(),
        line: position.line,
        character: position.character,
        items: list.map((item) =>
          typeof item.insertText === 'string' ? item.insertText : item.insertText.value,
        ),
      };
      if (!token.isCancellationRequested) {
        this.last = answer;
        this.emitter.fire(answer);
      }
      return result;
    },
  };

  dispose(): void {
    this.emitter.dispose();
  }
}
