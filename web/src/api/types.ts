/** Named aliases of the generated schemas that pages use. */
import type { components, paths } from './schema';

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
export type Resources = Schemas['ResourcesPublic'];
export type ClusterKind = Schemas['ClusterKind'];
export type ServerStatus = Schemas['ServerStatus'];
export type ServerCreate = Schemas['ServerCreate'];
export type ServerEvent = Schemas['ServerEventPublic'];
export type Gpu = Schemas['GpuPublic'];
export type GpuHolder = Schemas['GpuHolderPublic'];
export type HistoryWindow = Schemas['HistoryWindow'];
export type UsagePoint = Schemas['UsagePoint'];
export type GpuUsagePoint = Schemas['GpuUsagePoint'];
export type ServerHistory = Schemas['ServerHistoryPublic'];
export type FleetHistory = Schemas['FleetHistoryPublic'];
export type QueueEntry = Schemas['QueueEntryPublic'];
export type QueueJob = Schemas['JobPublic'];
export type WorkloadStatus = Schemas['WorkloadStatus'];
export type WorkloadSort = Schemas['WorkloadSort'];
export type UserAccount = Schemas['UserAccountPublic'];
export type Invite = Schemas['InvitePublic'];
export type InviteListed = Schemas['InviteListedPublic'];
export type Team = Schemas['TeamPublic'];
export type QuotaBody = Schemas['QuotaBody'];
export type AuditEvent = Schemas['AuditEventPublic'];
export type AuditVerification = Schemas['AuditVerificationPublic'];
export type FileEntry = Schemas['FileEntry'];
export type FileListing = Schemas['FilesPublic'];
export type CatalogImage = Schemas['ImagePublic'];
export type CatalogImageCreate = Schemas['ImageCreate'];
export type CatalogImageUpdate = Schemas['ImageUpdate'];
export type Registry = Schemas['RegistryPublic'];
export type RegistryCreate = Schemas['RegistryCreate'];
export type HostImage = Schemas['HostImagePublic'];
/** One NDJSON line of a pull, build or push (the last is `done` or `error`). */
export type ImageProgress =
  paths['/api/v1/servers/{server_id}/images/pull']['post']['responses'][200]['content']['application/x-ndjson'];
export type Pool = Schemas['PoolPublic'];
export type PoolCreate = Schemas['PoolCreate'];
export type PoolUpdate = Schemas['PoolUpdate'];
export type PoolMember = Schemas['PoolMemberPublic'];
