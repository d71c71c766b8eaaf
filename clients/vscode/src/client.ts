/**
 * The language client: starts `lowentropy serve` over stdio and maps the `lowentropy.*`
 * configuration to the server's settings (initializationOptions, then
 * workspace/didChangeConfiguration).
 *
 * The server forbids unknown keys, so only its own schema (the one of `lowentropy.toml`)
 * is sent; unset values (null) are left out so that `lowentropy.toml` and the server's
 * defaults still apply. The client's own settings (`serverPath`, `serverArgs`, `trace`,
 * `client.*`) never reach the server.
 */
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

export const SECTION = 'lowentropy';

/** Top-level keys of the server's settings schema (server/settings.py `WireSettings`). */
const SERVER_KEYS = [
  'tab',
  'nextEdit',
  'apply',
  'chat',
  'embed',
  'completion',
  'index',
  'chatContext',
  'applyBudgetMs',
  'recordPrompts',
] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A copy of `value` without null or undefined members, and without objects left empty. */
export function withoutUnset(value: unknown): Json | undefined {
  if (value === null || value === undefined) {
    return undefined;
  }
  if (Array.isArray(value)) {
    return value.map((item) => withoutUnset(item) ?? null);
  }
  if (typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      const kept = withoutUnset(item);
      if (kept !== undefined) {
        out[key] = kept;
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
    return value;
  }
  return undefined;
}

/** The server's part of the `lowentropy` configuration (what the user set, nothing else). */
export function serverSettings(scope?: vscode.ConfigurationScope): { [key: string]: Json } {
  // A WorkspaceConfiguration carries the settings as own properties (beside its methods), so a
  // JSON round trip gives every key the user set, declared in package.json or not.
  const config: Record<string, unknown> = JSON.parse(
    JSON.stringify(vscode.workspace.getConfiguration(SECTION, scope)),
  );
  const out: { [key: string]: Json } = {};
  for (const key of SERVER_KEYS) {
    const kept = withoutUnset(config[key]);
    if (kept !== undefined) {
      out[key] = kept;
    }
  }
  return out;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

export function serverCommand(): ServerCommand {
  const config = vscode.workspace.getConfiguration(SECTION);
  const command = config.get<string>('serverPath', 'lowentropy').trim() || 'lowentropy';
  const args = config.get<string[]>('serverArgs', ['serve']);
  return { command, args: Array.isArray(args) ? args.map(String) : ['serve'] };
}

/** A language client for `lowentropy serve`, not yet started. */
export function createClient(
  output: vscode.LogOutputChannel,
  middleware: Middleware,
): LanguageClient {
  const { command, args } = serverCommand();
  const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    // The server serves every file: Tab, next edit and apply are not tied to a language.
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(),
    outputChannel: output,
    middleware,
  };
  return new LanguageClient(SECTION, 'lowentropy', serverOptions, clientOptions);
}

/** Send the server's settings again after the user changed them. */
export async function sendSettings(client: LanguageClient): Promise<void> {
  await client.sendNotification(DidChangeConfigurationNotification.type, {
    settings: { [SECTION]: serverSettings() },
  });
}

/** Whether a configuration change needs a new server process (its command changed). */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    event.affectsConfiguration(`${SECTION}.serverPath`) ||
    event.affectsConfiguration(`${SECTION}.serverArgs`)
  );
}

/** Whether a configuration change concerns the server's settings. */
export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
  return SERVER_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}

/** The running client, or undefined while the server is (re)starting or stopped. */
export type GetClient = () => LanguageClient | undefined;

/** The running client; otherwise says so to the user and returns undefined. */
export function runningClient(get: GetClient): LanguageClient | undefined {
  const client = get();
  if (client === undefined || !client.isRunning()) {
    void vscode.window.showWarningMessage('lowentropy: the server is not running');
    return undefined;
  }
  return client;
}
