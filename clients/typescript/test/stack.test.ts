/**
 * The client against a real running stack (API, Redis, a worker): FILTERVIZ_API_URL names it.
 * tests/clients/test_typescript_client.py starts the stack and runs these with `npm test`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createFilterviz,
  isFinished,
  jobEvents,
  type FiltervizClient,
  type Job,
  type JobEvent,
  type JobRequest,
} from "../src/index.js";

const API_URL = process.env.FILTERVIZ_API_URL;
const SMALL_JOB: JobRequest = {
  model: "efficientnet_lite0",
  layer: "blocks.2",
  filters: [0, 1, 2, 3],
  steps: 5,
  size: [64, 64],
};
// long enough that it is still queued or running when it is canceled
const LONG_JOB: JobRequest = { ...SMALL_JOB, steps: 1000, method: "robust" };
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function client(): FiltervizClient {
  assert.ok(API_URL, "set FILTERVIZ_API_URL to a running filterviz API");
  return createFilterviz({ baseUrl: API_URL, apiKey: process.env.FILTERVIZ_API_KEY });
}

async function submit(api: FiltervizClient, body: JobRequest): Promise<Job> {
  const { data, error, response } = await api.POST("/v1/jobs", { body });
  assert.equal(response.status, 202, JSON.stringify(error));
  assert.ok(data);
  assert.equal(response.headers.get("Location"), `/v1/jobs/${data.id}`);
  return data;
}

/** Polls the job until `until` holds, at most `seconds` (10 polls a second). */
async function waitFor(api: FiltervizClient, id: string, until: (job: Job) => boolean, seconds = 120): Promise<Job> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const { data } = await api.GET("/v1/jobs/{job_id}", { params: { path: { job_id: id } } });
    assert.ok(data, `job ${id} disappeared`);
    if (until(data)) {
      return data;
    }
    assert.ok(Date.now() < deadline, `job ${id} still ${data.status} after ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("a submitted job renders, and its pictures download as PNGs", async () => {
  const api = client();
  const queued = await submit(api, SMALL_JOB);
  assert.ok(["queued", "running"].includes(queued.status));

  const job = await waitFor(api, queued.id, isFinished);
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  assert.deepEqual(job.progress, { step: 5, steps: 5 });
  assert.deepEqual(
    job.results.map((result) => result.filter),
    [0, 1, 2, 3],
  );

  const picture = await api.GET("/v1/jobs/{job_id}/filters/{n}.png", {
    params: { path: { job_id: job.id, n: 2 } },
    parseAs: "arrayBuffer",
  });
  assert.equal(picture.response.status, 200);
  assert.equal(picture.response.headers.get("Content-Type"), "image/png");
  assert.deepEqual([...new Uint8Array(picture.data as ArrayBuffer).subarray(0, 8)], PNG_SIGNATURE);

  const grid = await fetch(new URL(job.grid_url ?? "", API_URL));
  assert.equal(grid.status, 200);
  assert.deepEqual([...new Uint8Array(await grid.arrayBuffer()).subarray(0, 8)], PNG_SIGNATURE);
});

test("a job's event stream shows its progress and ends with the finished job", async () => {
  const api = client();
  const steps = 40;
  const queued = await submit(api, { ...SMALL_JOB, steps, seed: 1 });

  const seen: JobEvent[] = [];
  const watching = AbortSignal.timeout(120_000);
  for await (const event of jobEvents(api, queued.id, { signal: watching })) {
    seen.push(event);
  }

  const last = seen.at(-1);
  assert.equal(last?.event, "done", JSON.stringify(seen));
  const done = last.data as Job;
  assert.equal(done.id, queued.id);
  assert.equal(done.status, "succeeded");
  assert.deepEqual(done.progress, { step: steps, steps });
  const progress = seen.filter((event) => event.event === "progress").map((event) => event.data as Job["progress"]);
  const stepsSeen = progress.map((value) => value.step);
  assert.deepEqual(stepsSeen, [...stepsSeen].sort((a, b) => a - b), "progress never goes back");
  assert.ok(progress.every((value) => value.steps === steps), JSON.stringify(progress));
  assert.ok(seen.every((event) => event.id), "every event has an id to resume from");

  const again = [];
  for await (const event of jobEvents(api, queued.id, { signal: AbortSignal.timeout(10_000) })) {
    again.push(event);
  }
  assert.deepEqual(again.map((event) => event.event), ["done"], "a finished job's stream answers done at once");
});

test("a 422 names each bad field in its typed problem document", async () => {
  const api = client();
  const { data, error, response } = await api.POST("/v1/jobs", {
    body: { ...SMALL_JOB, layer: "no_such_layer", steps: 0 },
  });
  assert.equal(data, undefined);
  assert.equal(response.status, 422);
  assert.equal(response.headers.get("Content-Type"), "application/problem+json");
  assert.ok(error);
  assert.equal(error.status, 422);
  const fields = (error.errors ?? []).map((fieldError) => fieldError.loc.join("."));
  assert.ok(fields.includes("body.steps"), JSON.stringify(error));

  const layer = await api.POST("/v1/jobs", { body: { ...SMALL_JOB, layer: "no_such_layer" } });
  assert.equal(layer.response.status, 422);
  const layerError = layer.error?.errors?.find((fieldError) => fieldError.loc.join(".") === "body.layer");
  assert.ok(layerError, JSON.stringify(layer.error));
  assert.match(layerError.msg, /no_such_layer/);
});

test("a canceled job ends canceled, keeps no pictures, and cannot be canceled again", async () => {
  const api = client();
  const job = await submit(api, LONG_JOB);
  const path = { params: { path: { job_id: job.id } } };

  const cancel = await api.POST("/v1/jobs/{job_id}/cancel", path);
  assert.ok([200, 202].includes(cancel.response.status), JSON.stringify(cancel.error));
  const canceled = await waitFor(api, job.id, isFinished, 60);
  assert.equal(canceled.status, "canceled");
  assert.deepEqual(canceled.results, []);

  const grid = await api.GET("/v1/jobs/{job_id}/grid.png", { ...path, parseAs: "arrayBuffer" });
  assert.equal(grid.response.status, 404);
  const again = await api.POST("/v1/jobs/{job_id}/cancel", path);
  assert.equal(again.response.status, 409);
  assert.equal(again.error?.status, 409);
});

test("an unknown job is a typed 404 problem", async () => {
  const api = client();
  const { error, response } = await api.GET("/v1/jobs/{job_id}", { params: { path: { job_id: "no-such-job" } } });
  assert.equal(response.status, 404);
  assert.equal(error?.title, "Not Found");
});
