// Exports running in this process: at most EXPORT_POOL_SIZE in all, so a new one is refused at once
// instead of queueing for a connection, and at most EXPORT_MAX_PER_CLIENT per client, so one client
// cannot hold them all. A client is in the map only while it has an export running, so the map
// never holds more entries than there are slots.

export type SlotDecision =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly refusal: 'client_limit' | 'all_busy' };

export class ExportSlots {
  private readonly perClient = new Map<string, number>();
  private running = 0;

  constructor(
    private readonly total: number,
    private readonly maxPerClient: number,
  ) {}

  /** Clients with an export running. */
  get clientCount(): number {
    return this.perClient.size;
  }

  take(client: string): SlotDecision {
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.maxPerClient) return { ok: false, refusal: 'client_limit' };
    if (this.running >= this.total) return { ok: false, refusal: 'all_busy' };
    this.running++;
    this.perClient.set(client, held + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.running--;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left === 0) this.perClient.delete(client);
      else this.perClient.set(client, left);
    };
    return { ok: true, release };
  }
}
