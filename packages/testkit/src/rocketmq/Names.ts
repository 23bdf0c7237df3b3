/**
 * Topic and group names as the broker keeps them. A namespace (the
 * `x-mq-namespace` header, or a resource's own `resource_namespace`)
 * qualifies a name as `<namespace>%<name>`, and `%DLQ%<name>` /
 * `%RETRY%<name>` as `%DLQ%<namespace>%<name>`; clients see the plain names.
 *
 * @since 0.1.0
 */
import type * as Protocol from "./Protocol.ts"

const systemPrefixes = ["%DLQ%", "%RETRY%"]

/** `name` inside `namespace`, as the broker stores it. */
export const qualify = (name: string, namespace: string): string => {
  if (namespace === "") return name
  const inner = `${namespace}%`
  for (const prefix of systemPrefixes) {
    if (name.startsWith(prefix)) {
      const rest = name.slice(prefix.length)
      return rest.startsWith(inner) ? name : `${prefix}${inner}${rest}`
    }
  }
  return name.startsWith(inner) ? name : `${inner}${name}`
}

/** The name a client of `namespace` knows for the stored `name`. */
export const unqualify = (name: string, namespace: string): string => {
  if (namespace === "") return name
  const inner = `${namespace}%`
  for (const prefix of systemPrefixes) {
    if (name.startsWith(`${prefix}${inner}`)) return `${prefix}${name.slice(prefix.length + inner.length)}`
  }
  return name.startsWith(inner) ? name.slice(inner.length) : name
}

/** The stored name of a resource a caller of `namespace` names ("" when absent). */
export const ofResource = (resource: Protocol.Resource | undefined, namespace: string): string => {
  if (resource === undefined) return ""
  const name = resource.getName()
  if (name === "") return ""
  return qualify(name, resource.getResourceNamespace() || namespace)
}

// The broker's own rule for topic and group names.
const legalName = /^[%|a-zA-Z0-9_-]+$/

/** Why the broker would refuse `name` as a topic, or `undefined` when it is legal. */
export const topicNameProblem = (name: string): string | undefined => {
  if (name === "") return "topic is required"
  if (name.length > 127) return `topic ${name} is longer than 127 characters`
  if (!legalName.test(name)) return `topic ${name} contains characters other than ^[%|a-zA-Z0-9_-]+$`
  return undefined
}

/** Why the broker would refuse `name` as a consumer group, or `undefined` when it is legal. */
export const groupNameProblem = (name: string): string | undefined => {
  if (name === "") return "consumer group is required"
  if (name.length > 255) return `consumer group ${name} is longer than 255 characters`
  if (!legalName.test(name)) return `consumer group ${name} contains characters other than ^[%|a-zA-Z0-9_-]+$`
  return undefined
}
