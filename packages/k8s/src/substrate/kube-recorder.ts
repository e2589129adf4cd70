// Events on Kubernetes, as upstream records them (events.k8s.io/v1, reportingController
// agent-sandbox-controller): `asb describe` locally, `kubectl describe` here.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { AnyHub, Recorder } from '@asb/lifecycle';
import { microTime } from '../controller/leader.ts';

const REPORTER = 'agent-sandbox-controller';

export class KubeRecorder implements Recorder {
  private readonly events: k8s.EventsV1Api;

  constructor(
    kc: k8s.KubeConfig,
    private readonly instance = process.env.HOSTNAME ?? 'local',
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.events = kc.makeApiClient(k8s.EventsV1Api);
  }

  event(obj: AnyHub, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = new Date();
    const body: k8s.EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      // client-go's naming, <object>.<unique hex>: a generateName ending in "." is refused.
      metadata: {
        name: `${obj.metadata.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`,
        namespace: obj.metadata.namespace,
      },
      eventTime: microTime(now),
      type,
      reason,
      note: message.slice(0, 1024),
      action: reason,
      reportingController: REPORTER,
      reportingInstance: `${REPORTER}-${this.instance}`,
      regarding: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
    };
    // Events are best effort: a failure to record one never fails a reconcile.
    void this.events.createNamespacedEvent({ namespace: obj.metadata.namespace, body }).catch(this.onError);
  }
}
