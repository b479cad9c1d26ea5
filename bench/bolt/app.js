// Bolt for JavaScript comparison target for `deploybot loadtest`.
//
// This is what a team would most likely build instead of deploybot's
// responder: a stock Bolt app behind its ExpressReceiver. It does the same
// work as bench/floor — verify Slack's signature, write one job to a Redis
// stream with XADD, then acknowledge — so the load test compares frameworks,
// not features. The job is acknowledged only after Redis has it, as deploybot
// does ("queued" only once it is durable).
//
// Environment: SLACK_SIGNING_SECRET (required), PORT (default 8091),
// HOST (default 127.0.0.1, as the floor), REDIS_URL (default
// redis://127.0.0.1:6379/15), STREAM (default {bench}:bolt:jobs),
// LOG_LEVEL (default error).
'use strict';

// Express reads NODE_ENV when it is loaded; benchmark in production mode
// unless told otherwise.
process.env.NODE_ENV ??= 'production';

const { App, ExpressReceiver, LogLevel } = require('@slack/bolt');
const Redis = require('ioredis');

const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) {
  console.error('bolt: SLACK_SIGNING_SECRET is required');
  process.exit(1);
}
const port = Number(process.env.PORT || 8091);
const host = process.env.HOST || '127.0.0.1';
const redisURL = process.env.REDIS_URL || 'redis://127.0.0.1:6379/15';
const stream = process.env.STREAM || '{bench}:bolt:jobs';
const logLevel = process.env.LOG_LEVEL || LogLevel.ERROR;

const redis = new Redis(redisURL);
redis.on('error', (err) => console.error(`bolt: redis: ${err.message}`));

const receiver = new ExpressReceiver({
  signingSecret,
  logLevel,
  endpoints: { commands: '/slack/commands', interactions: '/slack/interactions' },
  processBeforeResponse: false,
});
receiver.router.get('/healthz', (_req, res) => res.send('ok\n'));

// A static authorization: Bolt never calls Slack (no auth.test), because
// the bot and user IDs are given along with the token.
const app = new App({
  receiver,
  logLevel,
  authorize: async () => ({ botToken: 'xoxb-bench', botId: 'B0BENCH', botUserId: 'U0BENCH' }),
});

// queue writes one job to the stream; it throws when Redis does not take it,
// and Bolt then answers 500 instead of acknowledging.
async function queue(job) {
  await redis.xadd(stream, '*', 'job', JSON.stringify(job));
}

app.command('/deploy', async ({ command, ack }) => {
  await queue({ type: 'command', user_id: command.user_id, command: command.command, text: command.text });
  await ack({ response_type: 'ephemeral', text: 'Queued.' });
});

app.action(/.*/, async ({ body, ack }) => {
  await queue({ type: body.type, user_id: body.user.id, payload: body });
  await ack();
});

async function main() {
  await redis.ping();
  await app.start({ port, host });
  console.error(`bolt: listening on ${host}:${port}, stream ${stream}, NODE_ENV=${process.env.NODE_ENV}`);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      await app.stop();
      await redis.quit();
      process.exit(0);
    });
  }
}

main().catch((err) => {
  console.error(`bolt: ${err.message}`);
  process.exit(1);
});
