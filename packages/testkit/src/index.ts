export { freePort, type NatsOptions, type NatsServer, startNats, waitForPort } from './nats.ts';
