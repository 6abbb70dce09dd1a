import { metrics } from '@koala/metrics';

export const ec2Requests = metrics.counter({
  name: 'koala_ec2_requests_total',
  help: 'EC2/IAM/STS Query API requests by action and answer (code "ok" or the error code).',
  labelNames: ['action', 'code'],
});
export const ec2RequestSeconds = metrics.histogram({ name: 'koala_ec2_request_duration_seconds', help: 'EC2 Query API request latency by action, in seconds.', labelNames: ['action'] });
