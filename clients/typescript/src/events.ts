/**
 * A job's server-sent events (`GET /v1/jobs/{id}/events`), read with the typed client's fetch.
 *
 * The browser's EventSource cannot send an `Authorization` header; this reader can, and works in
 * Node too. It yields each event until the server ends the stream (after `done`).
 */
import type { FiltervizClient } from "./index.js";

export interface JobEvent {
  /** `state`, `progress` or `done` */
  event: string;
  /** the event's data, parsed as JSON */
  data: unknown;
  /** send as `Last-Event-ID` to resume after this event */
  id: string | undefined;
}

export interface WatchOptions {
  /** resume after this event id */
  lastEventId?: string;
  signal?: AbortSignal;
}

export async function* jobEvents(api: FiltervizClient, jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEvent> {
  const { response } = await api.GET("/v1/jobs/{job_id}/events", {
    params: { path: { job_id: jobId }, header: { "Last-Event-ID": options.lastEventId } },
    parseAs: "stream",
    signal: options.signal,
  });
  if (!response.ok || response.body === null) {
    throw new Error(`GET /v1/jobs/${jobId}/events answered ${response.status}: ${await response.text()}`);
  }
  let buffer = "";
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    buffer = (buffer + chunk).replace(/\r\n?/g, "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event !== undefined) {
        yield event;
      }
    }
  }
}

/** One event's lines, as the SSE specification reads them; undefined for a comment (keep-alive). */
function parseEvent(block: string): JobEvent | undefined {
  const fields: Record<string, string[]> = {};
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) {
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    (fields[name] ??= []).push(value);
  }
  if (fields.data === undefined) {
    return undefined;
  }
  return { event: fields.event?.at(-1) ?? "message", data: JSON.parse(fields.data.join("\n")), id: fields.id?.at(-1) };
}
