// roundtrip.mjs drives a homeserver with matrix-js-sdk, a client library
// Sluice did not write, the way a messaging app does: two users register
// (user-interactive auth, m.login.dummy), each starts the SDK's own sync
// loop, one creates a public room, the other joins it, and each sends a text
// message that the other receives as a live timeline event of its sync loop.
//
//	node roundtrip.mjs <homeserver base URL>
//
// On success it prints one JSON line to stdout ({"ok":true,...}) and exits 0;
// on failure it prints {"ok":false,"error":...} and exits 1. Every request
// the SDK sends is traced to stderr with its answer; the result lists the
// distinct endpoints. JSSDK_WAIT_MS bounds each wait (default 20000),
// JSSDK_LOG sets the SDK's log level (default "warn").
//
// Crypto stays off (no initRustCrypto) and the SDK keeps its default memory
// store: nothing here needs a browser.

import { createRequire } from "node:module";

// The SDK logs through console.log; stdout is kept for the result line.
for (const m of ["log", "info", "debug", "trace"]) console[m] = console.error;

const sdk = await import("matrix-js-sdk");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.JSSDK_LOG || "warn");

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: node roundtrip.mjs <homeserver base URL>");
  process.exit(2);
}
const waitMs = Number(process.env.JSSDK_WAIT_MS || 20000);
const endpoints = new Set();
const lastFailure = {}; // client name -> its last failed request
const clients = [];

function finish(result) {
  for (const c of clients) c.stopClient();
  process.stdout.write(JSON.stringify({ ...result, endpoints: [...endpoints].sort() }) + "\n");
  process.exit(result.ok ? 0 : 1);
}

function fail(message) {
  finish({ ok: false, error: message });
}

// A hard bound on the whole run, whatever the SDK does.
setTimeout(() => fail(`timed out after ${(waitMs * 8) / 1000}s overall`), waitMs * 8).unref();

// endpoint is a request's path with its identifiers replaced, e.g.
// "PUT /v3/rooms/{roomId}/send/m.room.message/{txnId}".
function endpoint(method, url) {
  const segs = new URL(url).pathname.replace(/^\/_matrix\/client/, "").split("/");
  const out = segs.map((s, i) => {
    const d = decodeURIComponent(s);
    if (/^[@!$#]/.test(d)) return { "@": "{userId}", "!": "{roomId}", $: "{eventId}", "#": "{alias}" }[d[0]];
    if (i >= 2 && segs[i - 2] === "send") return "{txnId}";
    if (i >= 1 && segs[i - 1] === "filter") return "{filterId}";
    return d;
  });
  return `${method} ${out.join("/")}`;
}

// tracedFetch is the fetch a client is given: it traces each request and
// records the timeline events each /sync answer carries, so that "received
// through the sync loop" is checked on the wire as well as in the SDK.
function tracedFetch(name, synced) {
  return async (input, init = {}) => {
    const url = typeof input === "string" ? input : input.url ?? String(input);
    const method = (init.method || "GET").toUpperCase();
    const ep = endpoint(method, url);
    let res;
    try {
      res = await fetch(input, init);
    } catch (e) {
      if (init.signal?.aborted) throw e; // the SDK cancelled it (stopClient)
      console.error(`[${name}] ${ep} -> network error: ${e.message}`);
      endpoints.add(`${ep} -> network error`);
      throw e;
    }
    let note = "";
    if (!res.ok || ep.endsWith("/sync")) {
      const text = await res.clone().text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {}
      if (!res.ok) {
        // A user-interactive auth challenge is traced by its flows, not its session.
        const uia = body?.flows && !body.errcode ? `UIA ${body.flows.map((f) => f.stages.join(",")).join(" | ")}` : null;
        note = ` ${body?.errcode ?? uia ?? text.slice(0, 200)}`;
        lastFailure[name] = `${ep} -> ${res.status}${note}`;
      }
      if (res.ok && synced && body) {
        for (const [roomId, room] of Object.entries(body.rooms?.join ?? {})) {
          for (const ev of room.timeline?.events ?? []) synced.set(ev.event_id, { roomId, ev });
        }
      }
    }
    console.error(`[${name}] ${ep} -> ${res.status}${note}`);
    endpoints.add(`${ep} -> ${res.status}${note}`);
    return res;
  };
}

// until resolves once cond() is true, checking it every 50 ms, and fails
// the run after waitMs, saying what it was waiting for and detail().
function until(what, cond, detail) {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = () => {
      let v;
      try {
        v = cond();
      } catch (e) {
        return fail(`${what}: ${e.message}`);
      }
      if (v) return resolve(v);
      if (Date.now() - start > waitMs) {
        return fail(`timed out after ${waitMs / 1000}s waiting until ${what} ${detail?.() ?? ""}`.trim());
      }
      setTimeout(tick, 50);
    };
    tick();
  });
}

// register creates an account with the SDK's user-interactive auth driver,
// which picks the m.login.dummy flow from the server's 401 and submits it.
async function register(name) {
  const c = sdk.createClient({ baseUrl, fetchFn: tracedFetch(`${name}/register`) });
  const localpart = `jssdk_${name}_${Date.now().toString(36)}`;
  const ia = new sdk.InteractiveAuth({
    matrixClient: c,
    supportedStages: [sdk.AuthType.Dummy],
    doRequest: (auth) =>
      c.registerRequest({
        username: localpart,
        password: "roundtrip-password-1",
        initial_device_display_name: "matrix-js-sdk roundtrip",
        ...(auth ? { auth } : {}),
      }),
    stateUpdated: () => {},
    requestEmailToken: () => Promise.reject(new Error("no e-mail here")),
  });
  const res = await ia.attemptAuth();
  if (!res?.access_token || !res.user_id || !res.device_id) {
    throw new Error(`register ${localpart}: no access_token/user_id/device_id in ${JSON.stringify(res)}`);
  }
  return res;
}

// start starts a client's sync loop and waits until it is PREPARED. It
// records every live timeline event the SDK reports, by event ID.
async function start(name, creds) {
  const synced = new Map();
  const c = sdk.createClient({
    baseUrl,
    accessToken: creds.access_token,
    userId: creds.user_id,
    deviceId: creds.device_id,
    fetchFn: tracedFetch(name, synced),
  });
  clients.push(c);
  const st = { name, client: c, synced, timeline: new Map(), syncError: null };
  c.on(sdk.RoomEvent.Timeline, (ev, room, toStartOfTimeline, removed, data) => {
    if (toStartOfTimeline || removed || !data?.liveEvent) return;
    st.timeline.set(ev.getId(), ev);
  });
  c.on(sdk.ClientEvent.Sync, (state, prev, data) => {
    if (state === sdk.SyncState.Error) st.syncError = data?.error?.message ?? String(data?.error);
  });
  await c.startClient({ initialSyncLimit: 20, pendingEventOrdering: sdk.PendingEventOrdering.Detached });
  await until(
    `${name}'s sync loop is PREPARED`,
    () => ["PREPARED", "SYNCING"].includes(c.getSyncState()),
    () =>
      `(sync state ${c.getSyncState()}` +
      (st.syncError ? `; sync error: ${st.syncError}` : "") +
      (lastFailure[name] ? `; its last failed request: ${lastFailure[name]}` : "") +
      ")",
  );
  return st;
}

// received waits until an event arrives through a client's sync loop: in a
// /sync answer on the wire and as a live timeline event of the SDK, with
// the expected body, once in the timeline and no local echo left pending.
// txnId is the transaction ID for the sender, whose /sync must carry it in
// unsigned (that is how the SDK matches its local echo); null for others,
// who must not see it.
async function received(st, roomId, eventId, body, txnId) {
  await until(`${st.name} receives ${eventId} (${JSON.stringify(body)}) through its sync loop`, () => {
    const ev = st.timeline.get(eventId);
    return ev && st.synced.has(eventId);
  });
  const ev = st.timeline.get(eventId);
  if (ev.getRoomId() !== roomId || ev.getType() !== "m.room.message" || ev.getContent().body !== body) {
    throw new Error(`${st.name} got ${eventId} as ${JSON.stringify(ev.event)}`);
  }
  const wireTxn = st.synced.get(eventId).ev.unsigned?.transaction_id ?? null;
  if (wireTxn !== txnId) {
    throw new Error(`${st.name}'s /sync gave ${eventId} unsigned.transaction_id ${wireTxn}, want ${txnId}`);
  }
  const room = st.client.getRoom(roomId);
  const copies = room.getLiveTimeline().getEvents().filter((e) => e.getContent().body === body);
  if (copies.length !== 1) {
    throw new Error(`${st.name}'s timeline shows ${copies.length} copies of ${JSON.stringify(body)}`);
  }
  if (room.getPendingEvents().length !== 0) {
    throw new Error(
      `${st.name} still has ${room.getPendingEvents().length} pending local echoes ` +
        `(the server's /sync must give the sender unsigned.transaction_id)`,
    );
  }
}

try {
  const aCreds = await register("alice");
  const bCreds = await register("bob");
  const a = await start("alice", aCreds);
  const b = await start("bob", bCreds);

  const { room_id: roomId } = await a.client.createRoom({
    preset: sdk.Preset.PublicChat,
    name: "matrix-js-sdk roundtrip",
  });
  await until(`alice's sync loop shows her joined to ${roomId}`, () =>
    a.client.getRoom(roomId)?.getMyMembership() === "join",
  );
  await b.client.joinRoom(roomId);
  await until(`bob's sync loop shows him joined to ${roomId}`, () =>
    b.client.getRoom(roomId)?.getMyMembership() === "join",
  );
  await until(`alice's sync loop shows bob joined`, () =>
    a.client.getRoom(roomId)?.getMember(bCreds.user_id)?.membership === "join",
  );

  const hello = `hello from matrix-js-sdk ${Date.now()}`;
  const helloTxn = `jssdk-hello-${Date.now()}`;
  const { event_id: helloId } = await a.client.sendTextMessage(roomId, hello, helloTxn);
  await received(a, roomId, helloId, hello, helloTxn);
  await received(b, roomId, helloId, hello, null);

  const reply = `reply from matrix-js-sdk ${Date.now()}`;
  const replyTxn = `jssdk-reply-${Date.now()}`;
  const { event_id: replyId } = await b.client.sendTextMessage(roomId, reply, replyTxn);
  await received(b, roomId, replyId, reply, replyTxn);
  await received(a, roomId, replyId, reply, null);

  if (b.client.getRoom(roomId).name !== "matrix-js-sdk roundtrip") {
    throw new Error(`bob sees the room named ${JSON.stringify(b.client.getRoom(roomId).name)}`);
  }
  finish({
    ok: true,
    sdk: "matrix-js-sdk " + createRequire(import.meta.url)("matrix-js-sdk/package.json").version,
    users: [aCreds.user_id, bCreds.user_id],
    room_id: roomId,
    events: [helloId, replyId],
  });
} catch (e) {
  const detail = e?.errcode ? ` (${e.httpStatus} ${e.errcode}: ${e.data?.error ?? ""})` : "";
  fail(`${e?.message ?? e}${detail}`);
}
