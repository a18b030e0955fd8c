// Initiates a MongoDB replica set and creates the services' user. Run by mongosh against one
// member: by the Kubernetes Job smm-mongodb-init (3 members, authentication) and by the health
// check of docker-compose.yml's mongodb (1 member, no authentication). Idempotent: it does only
// what is missing, so it may run any number of times.
//
// Environment:
//   MONGO_REPLICA_SET     replica set name                                (default rs0)
//   MONGO_MEMBERS         host:port of every member, comma-separated      (default localhost:27017)
//   MONGO_WAIT_SECONDS    how long to wait for a primary before failing   (default 120)
//   MONGO_ROOT_USERNAME, MONGO_ROOT_PASSWORD   authenticate as this admin user first (optional)
//   MONGO_APP_DATABASE, MONGO_APP_USERNAME, MONGO_APP_PASSWORD
//                         create (or update the password of) this user with readWrite on the
//                         database; skipped when MONGO_APP_PASSWORD is empty
//   MONGO_APP_EXTRA_DATABASES  more databases the user gets readWrite on, comma-separated
//                         (the console keeps its users and sessions in <database>_console)
//   MONGO_REQUIRE_PRIMARY "true": fail unless this member is the primary (health checks)
const env = process.env;
const setName = env.MONGO_REPLICA_SET || "rs0";
const hosts = (env.MONGO_MEMBERS || "localhost:27017").split(",").map((h) => h.trim());
const waitSeconds = Number(env.MONGO_WAIT_SECONDS || "120");
const rootUser = env.MONGO_ROOT_USERNAME || "";
const rootPassword = env.MONGO_ROOT_PASSWORD || "";

if (rootUser) {
  db.getSiblingDB("admin").auth(rootUser, rootPassword);
}

function initiated() {
  try {
    rs.status();
    return true;
  } catch (e) {
    if (e.codeName === "NotYetInitialized" || e.code === 94) {
      return false;
    }
    throw e;
  }
}

if (!initiated()) {
  const members = hosts.map((host, i) => ({ _id: i, host: host, priority: i === 0 ? 2 : 1 }));
  rs.initiate({ _id: setName, members: members });
  print(`initiated replica set ${setName} with ${members.length} member(s)`);
}

// Wait until the set has a primary (any member: after a failover it need not be this one).
const deadline = Date.now() + waitSeconds * 1000;
let hello = db.hello();
while (!hello.primary) {
  if (Date.now() >= deadline) {
    print(`replica set ${setName} has no primary after ${waitSeconds}s`);
    quit(1);
  }
  sleep(1000);
  hello = db.hello();
}

const appPassword = env.MONGO_APP_PASSWORD || "";
if (appPassword) {
  // Users are written on the primary: connect there when this member is a secondary.
  let target = db;
  if (!hello.isWritablePrimary) {
    const credentials = rootUser
      ? `${encodeURIComponent(rootUser)}:${encodeURIComponent(rootPassword)}@`
      : "";
    target = connect(`mongodb://${credentials}${hello.primary}/admin?directConnection=true`);
  }
  const appDb = target.getSiblingDB(env.MONGO_APP_DATABASE || "smm");
  const appUser = env.MONGO_APP_USERNAME || "smm";
  const extra = (env.MONGO_APP_EXTRA_DATABASES || "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  const roles = [appDb.getName(), ...extra].map((name) => ({ role: "readWrite", db: name }));
  if (appDb.getUser(appUser) === null) {
    appDb.createUser({ user: appUser, pwd: appPassword, roles: roles });
    print(`created user ${appUser} on ${appDb.getName()}`);
  } else {
    appDb.updateUser(appUser, { pwd: appPassword, roles: roles });
    print(`updated user ${appUser} on ${appDb.getName()}`);
  }
}

// A health check of one member wants this member to be the primary.
if (env.MONGO_REQUIRE_PRIMARY === "true" && !hello.isWritablePrimary) {
  quit(1);
}
