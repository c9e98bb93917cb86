/** Named aliases of the generated schemas that pages use. */
import type { components } from './schema';

type Schemas = components['schemas'];

export type CurrentUser = Schemas['CurrentUserPublic'];
export type User = Schemas['UserPublic'];
export type Workload = Schemas['WorkloadPublic'];
export type WorkloadList = Schemas['WorkloadsPublic'];
export type Port = Schemas['PortPublic'];
export type Role = 'admin' | 'operator' | 'user';
export type FleetOverview = Schemas['FleetOverviewPublic'];
export type Resources = Schemas['ResourcesPublic'];
export type Cluster = Schemas['ClusterPublic'];
export type ClusterKind = Schemas['ClusterKind'];
export type Server = Schemas['ServerPublic'];
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
export type WorkloadStatus = Schemas['WorkloadStatus'];
export type WorkloadSort = Schemas['WorkloadSort'];
export type UserAccount = Schemas['UserAccountPublic'];
export type Invite = Schemas['InvitePublic'];
export type InviteListed = Schemas['InviteListedPublic'];
export type Team = Schemas['TeamPublic'];
export type QuotaBody = Schemas['QuotaBody'];
export type AuditEvent = Schemas['AuditEventPublic'];
export type AuditVerification = Schemas['AuditVerificationPublic'];
