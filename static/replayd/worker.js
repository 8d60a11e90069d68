// replayd-worker.js: the snippet's worker as a file, for pages whose CSP refuses blob: workers (the
// `workerUrl` option). The snippet's own copy is made from the same functions (transport.js).

import { pack, serve, upload } from './pack.js';

serve(pack, upload);
