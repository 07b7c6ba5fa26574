/** The page's entry point (bundled into api/assets/take/take.js). */

import { boot } from "./screens";

void boot();
