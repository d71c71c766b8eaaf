/**
 * lowentropy for VS Code: the language client for `lowentropy serve` and the UI around the
 * server's custom requests (next edit, chat, apply, status). Ghost text comes from the
 * language client's inline completion support (inline.ts).
 */
import * as vscode from 'vscode';
import { LanguageClient, State } from 'vscode-languageclient/node';
import { Apply } from './apply';
import { Chat } from './chat';
import { affectsServer, createClient, needsRestart, sendSettings, serverCommand } from './client';
import { InlineWatcher } from './inline';
import { NextEdit } from './nextEdit';
import { runSelfTest, SELF_TEST_ENV } from './selfTest';
import { Status } from './status';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('lowentropy', { log: true });
  const getClient = () => client;
  const inline = new InlineWatcher();
  const apply = new Apply(getClient);
  const nextEdit = new NextEdit(getClient);
  const chat = new Chat(getClient);
  const status = new Status(getClient);
  context.subscriptions.push(output, inline, apply, nextEdit, chat, status);

  const start = async (): Promise<void> => {
    const fresh = createClient(output, {
      ...inline.middleware,
      executeCommand: apply.executeCommand,
    });
    fresh.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        status.stopped('the server stopped (see the lowentropy output)');
      }
    });
    client = fresh;
    try {
      await fresh.start();
      status.start();
    } catch (error) {
      const { command, args } = serverCommand();
      const message = error instanceof Error ? error.message : String(error);
      status.stopped(`could not start \`${[command, ...args].join(' ')}\`: ${message}`);
      void vscode.window.showErrorMessage(
        `lowentropy: could not start \`${[command, ...args].join(' ')}\` (${message}). ` +
          'Set lowentropy.serverPath to the lowentropy command.',
      );
    }
  };
  const restart = async (): Promise<void> => {
    const old = client;
    client = undefined;
    await old?.stop().catch(() => undefined);
    await start();
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('lowentropy.restart', restart),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (needsRestart(event)) {
        await restart();
      } else if (affectsServer(event) && client?.isRunning()) {
        await sendSettings(client);
      }
    }),
  );
  await start();

  const selfTest = process.env[SELF_TEST_ENV];
  if (selfTest) {
    void runSelfTest(selfTest, { getClient, inline, apply, chat, status });
  }
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
