/**
 * A typed client for the filterviz API.
 *
 * `schema.d.ts` is generated from the API's OpenAPI document (`make client`); this module adds
 * what a caller needs around it: the base URL, the API key, and names for the shapes it sees.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { Readable, Writable } from "openapi-typescript-helpers";

import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

// as the client sends (Writable) and receives (Readable) them, which is how openapi-fetch types bodies
type Schemas = components["schemas"];
export type JobRequest = Writable<Schemas["JobRequest"]>;
export type Job = Readable<Schemas["Job"]>;
export type JobPage = Readable<Schemas["JobPage"]>;
export type JobStatus = Job["status"];
export type ProblemDetail = Readable<Schemas["ProblemDetail"]>;
export type FieldError = Readable<Schemas["FieldError"]>;
export type FiltervizClient = Client<paths>;

export interface ClientOptions {
  /** where the API is, e.g. `http://127.0.0.1:8000` */
  baseUrl: string;
  /** sent as `Authorization: Bearer <key>` where the deployment configures keys */
  apiKey?: string;
  /** another fetch, e.g. one with a proxy or a timeout */
  fetch?: typeof globalThis.fetch;
}

/** A client whose every path, parameter, body, response and problem+json error is typed. */
export function createFilterviz(options: ClientOptions): FiltervizClient {
  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: options.fetch });
  if (options.apiKey) {
    client.use(bearer(options.apiKey));
  }
  return client;
}

function bearer(apiKey: string): Middleware {
  return {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${apiKey}`);
      return request;
    },
  };
}

/** The states after which a job never changes again. */
export const FINISHED: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

export function isFinished(job: Job): boolean {
  return FINISHED.includes(job.status);
}

export { jobEvents, type JobEvent, type WatchOptions } from "./events.js";
