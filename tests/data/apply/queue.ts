/** A retrying job queue with a concurrency limit. */

export interface Job<T> {
    id: string;
    run: () => Promise<T>;
    attempts: number;
}

export type Outcome<T> = { id: string; ok: true; value: T } | { id: string; ok: false; error: string };

const DEFAULT_RETRIES = 3;

export function makeJob<T>(id: string, run: () => Promise<T>): Job<T> {
    return { id, run, attempts: 0 };
}

export async function runWithRetry<T>(job: Job<T>, retries: number = DEFAULT_RETRIES): Promise<Outcome<T>> {
    let lastError = "";
    while (job.attempts < retries) {
        job.attempts += 1;
        try {
            const value = await job.run();
            return { id: job.id, ok: true, value };
        } catch (err) {
            lastError = String(err);
        }
    }
    return { id: job.id, ok: false, error: lastError };
}

export class JobQueue<T> {
    private pending: Job<T>[] = [];
    private running = 0;
    private results: Outcome<T>[] = [];

    constructor(private readonly limit: number) {
        if (limit < 1) {
            throw new RangeError("limit must be at least 1");
        }
    }

    add(job: Job<T>): void {
        this.pending.push(job);
    }

    size(): number {
        return this.pending.length + this.running;
    }

    async drain(): Promise<Outcome<T>[]> {
        const workers: Promise<void>[] = [];
        for (let i = 0; i < this.limit; i++) {
            workers.push(this.worker());
        }
        await Promise.all(workers);
        return this.results;
    }

    private async worker(): Promise<void> {
        while (this.pending.length > 0) {
            const job = this.pending.shift();
            if (job === undefined) {
                break;
            }
            this.running += 1;
            const outcome = await runWithRetry(job);
            this.results.push(outcome);
            this.running -= 1;
        }
    }
}

export function summarize<T>(outcomes: Outcome<T>[]): string {
    const failed = outcomes.filter((o) => !o.ok).length;
    const passed = outcomes.length - failed;
    if (failed > 0) {
        return `${passed} passed, ${failed} failed`;
    }
    return `${passed} passed`;
}
