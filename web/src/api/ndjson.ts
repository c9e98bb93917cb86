/**
 * Reading a stream of NDJSON lines (an image pull, build or push answers one): each
 * complete line is parsed and handed over as it arrives; a line that is not JSON is
 * handed over as text, so nothing the server said is lost.
 */

/** The most characters kept of a line still unfinished (a runaway line is cut). */
const MAX_PENDING_CHARS = 64 * 1024;

export async function readNdjsonLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: unknown) => void,
): Promise<void> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  const emit = (text: string) => {
    const trimmed = text.trim();
    if (!trimmed) return;
    try {
      onLine(JSON.parse(trimmed));
    } catch {
      onLine(trimmed);
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let end = pending.indexOf('\n');
    while (end >= 0) {
      emit(pending.slice(0, end));
      pending = pending.slice(end + 1);
      end = pending.indexOf('\n');
    }
    if (pending.length > MAX_PENDING_CHARS) pending = pending.slice(0, MAX_PENDING_CHARS);
  }
  emit(pending + decoder.decode());
}
