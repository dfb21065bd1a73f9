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

// Endpoint IDs are 64 hex; network IDs too, or 25 lower-case alphanumerics for Swarm-scoped
// networks. They become file names, so the patterns also keep a request from naming a path.
const networkId = { type: 'string', pattern: '^(?:[0-9a-f]{64}|[0-9a-z]{25})$' } as const;
const endpointId = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
// Shapes only; the values are parsed as what they are (host/ipv4.ts) before any use.
const cidr = { type: 'string', maxLength: 18, pattern: '^[0-9.]+/[0-9]+$' } as const;
const ipData = {
  type: 'object',
  required: ['Pool'],
  properties: {
    AddressSpace: { type: 'string', maxLength: 256 },
    Pool: cidr,
    Gateway: { type: 'string', maxLength: 18, pattern: '^[0-9.]+(/[0-9]+)?$' },
    AuxAddresses: { type: ['object', 'null'], maxProperties: 256, additionalProperties: { type: 'string', maxLength: 18 } },
  },
} as const;
const options = { type: ['object', 'null'], maxProperties: 64 } as const;

export const schemas = {
  CreateNetwork: {
    type: 'object',
    required: ['NetworkID'],
    properties: {
      NetworkID: networkId,
      Options: {
        type: ['object', 'null'],
        maxProperties: 64,
        properties: {
          'com.docker.network.generic': {
            type: ['object', 'null'],
            maxProperties: 64,
            propertyNames: { maxLength: 256 },
            additionalProperties: { type: 'string', maxLength: 4096 },
          },
        },
      },
      IPv4Data: { type: ['array', 'null'], maxItems: 16, items: ipData },
      IPv6Data: { type: ['array', 'null'], maxItems: 16, items: { type: 'object' } },
    },
  },
  Network: { type: 'object', required: ['NetworkID'], properties: { NetworkID: networkId } },
  Endpoint: {
    type: 'object',
    required: ['NetworkID', 'EndpointID'],
    properties: { NetworkID: networkId, EndpointID: endpointId },
  },
  CreateEndpoint: {
    type: 'object',
    required: ['NetworkID', 'EndpointID'],
    properties: {
      NetworkID: networkId,
      EndpointID: endpointId,
      Interface: {
        type: ['object', 'null'],
        properties: {
          Address: { type: 'string', maxLength: 18 },
          AddressIPv6: { type: 'string', maxLength: 64 },
          MacAddress: { type: 'string', maxLength: 32 },
        },
      },
      Options: options,
    },
  },
  Join: {
    type: 'object',
    required: ['NetworkID', 'EndpointID', 'SandboxKey'],
    properties: {
      NetworkID: networkId,
      EndpointID: endpointId,
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
