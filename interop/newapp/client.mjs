// The partysocket side of .ci/newapp.sh: two clients chat through the app a
// newcomer built from the README, and each sees what the guide promises.
// Usage: node interop/newapp/client.mjs HOST:PORT
import PartySocket from "partysocket";
import WS from "ws";

const host = process.argv[2];
const deadline = setTimeout(() => {
  console.error("newapp client: no complete chat within 20 s");
  process.exit(1);
}, 20_000);

function join(id) {
  const ps = new PartySocket({ host, room: "newapp", id, WebSocket: WS });
  const waiting = [];
  const inbox = [];
  ps.addEventListener("message", (e) => {
    const w = waiting.shift();
    if (w) w(e.data);
    else inbox.push(e.data);
  });
  ps.next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiting.push(r)));
  return ps;
}

async function expect(ps, want) {
  const got = await ps.next();
  if (got !== want) {
    console.error(`newapp client: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    process.exit(1);
  }
  console.log(`ok: ${want}`);
}

const alice = join("alice");
await expect(alice, "Welcome, alice");
const bob = join("bob");
await expect(bob, "Welcome, bob");
await expect(alice, "Heads up! bob joined the party!");
alice.send("Hello everyone");
await expect(bob, "Hello everyone");
alice.close();
await expect(bob, "So sad! alice left the party!");
bob.close();
clearTimeout(deadline);
