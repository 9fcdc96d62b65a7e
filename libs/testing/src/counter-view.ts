import type { CounterView, PendingEntry } from '@app/counter-view';

/** Adds one pending delta through the view's write script, as the API does; the value served after it. */
export async function addPending(view: CounterView, name: string, entry: PendingEntry): Promise<number | null> {
  const outcome = await view.write(name, entry);
  if (outcome.kind !== 'added') throw new Error(`the view did not take ${entry.eventId}: ${outcome.kind}`);
  return outcome.value;
}
