/**
 * The status bar item: the index state (`lowentropy/indexStatus`) and the backends
 * (`lowentropy/stats`), polled every `lowentropy.client.statusIntervalMs` (every 2 s while
 * the index is being built). A click runs `lowentropy.status`, which shows the details.
 */
import * as vscode from 'vscode';
import { GetClient } from './client';
import { INDEX_STATUS, IndexStatus, STATS, StatsResult } from './protocol';

export interface StatusSnapshot {
  index?: IndexStatus;
  stats?: StatsResult;
  error?: string;
}

export class Status implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'lowentropy.status',
    vscode.StatusBarAlignment.Right,
    100,
  );
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  last: StatusSnapshot = {};
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly getClient: GetClient) {
    this.item.name = 'lowentropy';
    this.item.command = 'lowentropy.status';
    this.item.text = '$(loading~spin) lowentropy';
    this.item.tooltip = 'lowentropy: starting';
    this.item.show();
    this.disposables.push(
      this.item,
      vscode.commands.registerCommand('lowentropy.status', () => this.showDetails()),
    );
  }

  /** Poll now and then on a timer. */
  start(): void {
    clearTimeout(this.timer);
    void this.tick();
  }

  stopped(reason: string): void {
    clearTimeout(this.timer);
    this.item.text = '$(error) lowentropy';
    this.item.tooltip = `lowentropy: ${reason}`;
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
  }

  private async tick(): Promise<void> {
    this.last = await this.fetch();
    if (this.disposed) {
      return;
    }
    this.render(this.last);
    const busy = this.last.index?.state === 'indexing' || this.last.index?.state === 'embedding';
    const interval = vscode.workspace
      .getConfiguration('lowentropy')
      .get<number>('client.statusIntervalMs', 10000);
    this.timer = setTimeout(() => void this.tick(), busy ? 2000 : Math.max(1000, interval));
  }

  async fetch(): Promise<StatusSnapshot> {
    const client = this.getClient();
    if (client === undefined || !client.isRunning()) {
      return { error: 'the server is not running' };
    }
    try {
      const [index, stats] = await Promise.all([
        client.sendRequest<IndexStatus>(INDEX_STATUS, {}),
        client.sendRequest<StatsResult>(STATS, {}),
      ]);
      return { index, stats };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  private render(snapshot: StatusSnapshot): void {
    const unhealthy = (snapshot.stats?.backends ?? []).filter((b) => isUnhealthy(b.detail));
    const problem = snapshot.error ?? snapshot.index?.error ?? undefined;
    let icon = '$(check)';
    let label = '';
    const index = snapshot.index;
    if (index?.state === 'indexing') {
      icon = '$(sync~spin)';
      label = ` indexing ${index.files} files`;
    } else if (index?.state === 'embedding') {
      icon = '$(sync~spin)';
      label = ` embedding ${index.pendingEmbeddings}`;
    }
    if (problem || unhealthy.length > 0) {
      icon = '$(warning)';
    }
    this.item.text = `${icon} lowentropy${label}`;
    this.item.backgroundColor =
      problem || unhealthy.length > 0
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
    this.item.tooltip = describe(snapshot).join('\n');
  }

  private async showDetails(): Promise<void> {
    this.last = await this.fetch();
    this.render(this.last);
    const lines = describe(this.last);
    void vscode.window.showInformationMessage(lines[0] ?? 'lowentropy', {
      modal: true,
      detail: lines.slice(1).join('\n'),
    });
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

function isUnhealthy(detail: Record<string, unknown> | undefined): boolean {
  if (detail === undefined) {
    return false;
  }
  return detail.healthy === false || detail.healthy === 0;
}

/** The snapshot in lines: a title, the index, the backends, Tab's counters. */
export function describe(snapshot: StatusSnapshot): string[] {
  const lines = ['lowentropy'];
  if (snapshot.error) {
    lines.push(`error: ${snapshot.error}`);
  }
  const index = snapshot.index;
  if (index !== undefined) {
    lines.push(
      `index: ${index.state}, ${index.files} files, ${index.chunks} chunks, ` +
        `${index.pendingEmbeddings} waiting for embeddings`,
    );
    if (index.model) {
      lines.push(`embedder: ${index.model}`);
    }
    if (index.error) {
      lines.push(`index error: ${index.error}`);
    }
  }
  for (const backend of snapshot.stats?.backends ?? []) {
    const health = isUnhealthy(backend.detail) ? ', unhealthy' : '';
    lines.push(`${backend.role}: ${backend.kind} ${backend.name} (${backend.template}${health})`);
  }
  const tab = snapshot.stats?.tab;
  if (tab !== undefined) {
    const n = (key: string) => Number(tab[key] ?? 0);
    lines.push(
      `tab: ${n('requests')} requests, ${n('shown')} shown, ${n('accepted')} accepted, ` +
        `${n('partiallyAccepted')} partly accepted`,
    );
  }
  return lines;
}
