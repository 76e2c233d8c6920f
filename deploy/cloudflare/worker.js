// The Cloudflare Worker in front of Rookery: every request, WebSocket upgrades (the
// firehose) included, goes to ONE container instance, because SQLite has one writer. The
// container's disk is wiped whenever it stops, so Rookery keeps its databases in R2
// (ROOKERY_REPLICA_S3_*): it restores them at boot and ships every change within a second,
// flushing on SIGTERM. See docs/deploy.md.
import { Container, getContainer } from "@cloudflare/containers";

// Settings passed from the Worker's vars and secrets into the container's environment.
const FORWARDED = [
  "PDS_HOSTNAME",
  "PDS_SERVICE_DID",
  "PDS_ADMIN_PASSWORD",
  "PDS_JWT_SECRET",
  "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
  "PDS_EMAIL_SMTP_URL",
  "PDS_EMAIL_FROM_ADDRESS",
  "PDS_CRAWLERS",
  "PDS_BLOBSTORE_S3_BUCKET",
  "PDS_BLOBSTORE_S3_ENDPOINT",
  "PDS_BLOBSTORE_S3_REGION",
  "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
  "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
  "ROOKERY_REPLICA_S3_BUCKET",
  "ROOKERY_REPLICA_S3_PREFIX",
  "ROOKERY_REPLICA_S3_ENDPOINT",
  "ROOKERY_REPLICA_S3_REGION",
  "ROOKERY_REPLICA_S3_ACCESS_KEY_ID",
  "ROOKERY_REPLICA_S3_SECRET_ACCESS_KEY",
  "ROOKERY_REPLICA_STRICT",
  "ROOKERY_TRUSTED_PROXY_HEADER",
  "LOG_LEVEL",
];

export class RookeryContainer extends Container {
  defaultPort = 2583;
  // Stay up while requests come; after an idle hour the container stops (SIGTERM: the
  // replica is flushed) and the next request restores it from R2.
  sleepAfter = "1h";

  constructor(ctx, env) {
    super(ctx, env);
    const vars = { PDS_PORT: "2583", PDS_DATA_DIRECTORY: "/data" };
    for (const name of FORWARDED) {
      if (typeof env[name] === "string" && env[name] !== "") vars[name] = env[name];
    }
    this.envVars = vars;
  }
}

export default {
  async fetch(request, env) {
    return getContainer(env.ROOKERY, "pds").fetch(request);
  },
};
