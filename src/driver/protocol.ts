/** Request and answer shapes of the libnetwork remote-driver protocol, with their JSON schemas. */

export interface CapabilitiesResponse {
  Scope: 'local' | 'global';
  ConnectivityScope: 'local' | 'global';
}

export interface IPData {
  AddressSpace?: string;
  Pool: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string> | null;
}

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, unknown> & { 'com.docker.network.generic'?: Record<string, string> };
  IPv4Data?: IPData[] | null;
  IPv6Data?: IPData[] | null;
}

export interface NetworkRequest {
  NetworkID: string;
}

export interface EndpointRequest {
  NetworkID: string;
  EndpointID: string;
}

export interface CreateEndpointRequest extends EndpointRequest {
  Interface?: { Address?: string; AddressIPv6?: string; MacAddress?: string } | null;
  Options?: Record<string, unknown> | null;
}

export interface CreateEndpointResponse {
  Interface?: { Address?: string; AddressIPv6?: string; MacAddress?: string };
}

export interface JoinRequest extends EndpointRequest {
  SandboxKey: string;
  Options?: Record<string, unknown> | null;
}

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: { Destination: string; RouteType: 0 | 1; NextHop?: string }[];
  DisableGatewayService?: boolean;
}

export interface OperInfoResponse {
  Value: Record<string, unknown>;
}

// Docker's IDs are 64 hex today; Swarm's are 25 alphanumerics. They become file names, so the
// pattern also keeps a request from naming a path outside the data directory.
const id = { type: 'string', pattern: '^[A-Za-z0-9]{1,128}$' } as const;
const ipData = {
  type: 'object',
  required: ['Pool'],
  properties: {
    AddressSpace: { type: 'string' },
    Pool: { type: 'string', minLength: 1 },
    Gateway: { type: 'string' },
    AuxAddresses: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
  },
} as const;
const options = { type: ['object', 'null'] } as const;

export const schemas = {
  CreateNetwork: {
    type: 'object',
    required: ['NetworkID'],
    properties: {
      NetworkID: id,
      Options: {
        type: ['object', 'null'],
        properties: {
          'com.docker.network.generic': { type: ['object', 'null'], additionalProperties: { type: 'string' } },
        },
      },
      IPv4Data: { type: ['array', 'null'], items: ipData },
      IPv6Data: { type: ['array', 'null'], items: ipData },
    },
  },
  Network: { type: 'object', required: ['NetworkID'], properties: { NetworkID: id } },
  Endpoint: {
    type: 'object',
    required: ['NetworkID', 'EndpointID'],
    properties: { NetworkID: id, EndpointID: id },
  },
  CreateEndpoint: {
    type: 'object',
    required: ['NetworkID', 'EndpointID'],
    properties: {
      NetworkID: id,
      EndpointID: id,
      Interface: {
        type: ['object', 'null'],
        properties: {
          Address: { type: 'string' },
          AddressIPv6: { type: 'string' },
          MacAddress: { type: 'string' },
        },
      },
      Options: options,
    },
  },
  Join: {
    type: 'object',
    required: ['NetworkID', 'EndpointID', 'SandboxKey'],
    properties: {
      NetworkID: id,
      EndpointID: id,
      // Only Docker's own sandbox keys (host/netns.ts SANDBOX_KEY): never /proc/1/ns/net or any other file.
      SandboxKey: { type: 'string', pattern: '^(/var)?/run/docker/netns/[0-9a-f]{12}$', maxLength: 40 },
      Options: options,
    },
  },
  Discover: {
    type: 'object',
    required: ['DiscoveryType'],
    properties: { DiscoveryType: { type: 'integer' }, DiscoveryData: {} },
  },
  Any: { type: ['object', 'null'] },
} as const;
