/** Named aliases of the generated schemas that pages use. */
import type { components } from './schema';

type Schemas = components['schemas'];

export type CurrentUser = Schemas['CurrentUserPublic'];
export type User = Schemas['UserPublic'];
export type Workload = Schemas['WorkloadPublic'];
export type WorkloadList = Schemas['WorkloadsPublic'];
export type Port = Schemas['PortPublic'];
export type Role = 'admin' | 'operator' | 'user';
export type FileEntry = Schemas['FileEntry'];
export type FileListing = Schemas['FilesPublic'];
