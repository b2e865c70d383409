/** A campaign worker thread: plays each seed it is sent and posts the result back. */
import { parentPort } from 'node:worker_threads';
import { playAndJudge } from './campaign.ts';
import { generateStory } from './story.ts';

parentPort?.on('message', (seed: number) => {
  void playAndJudge(generateStory(seed)).then((r) => parentPort?.postMessage(r));
});
