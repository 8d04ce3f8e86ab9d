/** Health checks and diagnostics of services: from the reaching side (`connect reach --check`) and the exposing one. */
export { checkService, explainOpen, type CheckServiceOptions, type ServiceCheckReport } from './check-service.js';
export { checkTarget, type CheckTargetOptions } from './check-target.js';
export { checkTargetOver, type Dial, type TargetCheckOptions } from './target-checks.js';
export { checkTargetDns, resolveHost, type Resolution } from './dns-check.js';
export { probeTls, type TlsInfo, type TlsProbeResult } from './tls-probe.js';
export { probeHttp, type HttpProbeResult } from './http-probe.js';
export { tlsCheck, CERT_EXPIRY_WARNING_DAYS } from './tls-check.js';
export { startHealthMonitor, type HealthMonitor, type HealthMonitorOptions } from './health-monitor.js';
export { monitorTarget, type TargetMonitorOptions } from './target-monitor.js';
