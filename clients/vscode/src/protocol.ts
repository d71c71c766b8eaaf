/**
 * The custom `lowentropy/*` protocol as the extension uses it (the server's side is typed
 * in server/protocol.py; tests/test_protocol_types.py checks that the fields agree).
 * Positions and ranges are LSP's.
 */
import type * as lsp from 'vscode-languageclient/node';

export const NEXT_EDIT = 'lowentropy/nextEdit';
export const CHAT = 'lowentropy/chat';
export const APPLY = 'lowentropy/apply';
export const EDIT_SELECTION = 'lowentropy/editSelection';
export const INDEX_STATUS = 'lowentropy/indexStatus';
export const STATS = 'lowentropy/stats';

/** Server commands that edit; the extension routes them through its diff preview. */
export const APPLY_COMMAND = 'lowentropy.applySketch';
export const EDIT_COMMAND = 'lowentropy.editSelection';

export interface DocumentRef {
  uri: string;
  version?: number | null;
}

export interface NextEditItem {
  textDocument: DocumentRef;
  range: lsp.Range;
  text: string;
  command?: lsp.Command | null;
}

export interface NextEditResult {
  edits: NextEditItem[];
  jump?: lsp.Location | null;
}

export interface ChatMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

export interface ChatParams {
  messages: ChatMessage[];
  context?: {
    textDocument?: DocumentRef;
    range?: lsp.Range;
    position?: lsp.Position;
    uris?: string[];
  };
  partialResultToken?: string | number;
  workDoneToken?: string | number;
}

/** A file the chat context named that stayed out of the prompt (a secret, ignored, outside). */
export interface IgnoredUri {
  uri: string;
  reason: string;
}

export interface ChatResult {
  content: string;
  citations: lsp.Location[];
  ignored: IgnoredUri[];
}

/** One `lowentropy/search` hit; the request answers a list. */
export interface SearchHit {
  location: lsp.Location;
  score: number;
  text: string;
  symbol: string | null;
  kind: string | null;
}

export interface ApplyParams {
  textDocument: DocumentRef;
  sketch: string;
  range?: lsp.Range | null;
  instruction?: string | null;
  wait?: boolean; // wait for a slow model rewrite instead of a quick refusal
  partialResultToken?: string | number;
  workDoneToken?: string | number;
}

export interface EditSelectionParams {
  textDocument: DocumentRef;
  range: lsp.Range;
  instruction: string;
  partialResultToken?: string | number;
  workDoneToken?: string | number;
}

export interface ApplyStats {
  tokens: number;
  draftTokens: number;
  acceptedDraftTokens: number;
  seconds: number;
  path: 'deterministic' | 'model';
}

export interface ApplyResult {
  edit: lsp.WorkspaceEdit;
  diff: string;
  verified: boolean;
  reason: string | null;
  version: number;
  stats: ApplyStats;
}

export interface IndexStatus {
  state: 'off' | 'indexing' | 'embedding' | 'ready' | 'error';
  files: number;
  chunks: number;
  pendingEmbeddings: number;
  rootHash: string;
  model: string;
  error?: string | null;
}

export interface BackendState {
  role: string;
  kind: string;
  name: string;
  template: string;
  tokenizerExact?: boolean;
  detail?: Record<string, unknown>;
}

export interface StatsResult {
  tab: Record<string, unknown>;
  backends: BackendState[];
}
