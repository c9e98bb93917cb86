/** Named aliases of the generated schemas that pages use. */
import type { components } from './schema';

type Schemas = components['schemas'];

export type CurrentUser = Schemas['CurrentUserPublic'];
export type User = Schemas['UserPublic'];
export type Workload = Schemas['WorkloadPublic'];
export type WorkloadList = Schemas['WorkloadsPublic'];
export type Port = Schemas['PortPublic'];
export type Role = 'admin' | 'operator' | 'user';
export type WorkloadCreate = Schemas['WorkloadCreate'];
export type WorkloadUpdate = Schemas['WorkloadUpdate'];
export type WorkloadEvent = Schemas['WorkloadEventPublic'];
export type WorkloadEvents = Schemas['WorkloadEventsPublic'];
export type Placement = Schemas['PlacementPublic'];
export type FleetOverview = Schemas['FleetOverviewPublic'];
export type FreeNow = Schemas['FreeNowPublic'];
export type Cluster = Schemas['ClusterPublic'];
export type Server = Schemas['ServerPublic'];
export type TeamMembership = Schemas['TeamMembershipPublic'];
export type FileEntry = Schemas['FileEntry'];
export type FileListing = Schemas['FilesPublic'];
