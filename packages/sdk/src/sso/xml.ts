import { DOMParser } from '@xmldom/xmldom';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
} as const;

export class XmlRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlRejectedError';
  }
}

/**
 * Parses an untrusted XML document. Any DOCTYPE (with or without entities, used or not)
 * and any entity declaration is refused before parsing; parser warnings and errors are
 * fatal.
 */
export function parseUntrustedXml(xml: string): Document {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw new XmlRejectedError('DOCTYPE is not allowed');
  // Counted before parsing: tens of thousands of declarations cost the parser itself
  // (xmldom) about a second, and the signature check far more (see MAX_ATTRIBUTES).
  if (countOccurrences(xml, 'xmlns', MAX_NAMESPACE_DECLARATIONS + 1) > MAX_NAMESPACE_DECLARATIONS) {
    throw new XmlRejectedError(`more than ${MAX_NAMESPACE_DECLARATIONS} namespace declarations`);
  }
  // xmldom checks each node added to the Document against all of the Document's children:
  // comments and processing instructions around the root (well-formed, so no parser error)
  // cost quadratic time, ~30 s for 40,000 within the body limit. Counted before parsing.
  if (countOccurrences(xml, '<!--', MAX_COMMENTS + 1) > MAX_COMMENTS || countOccurrences(xml, '<?', MAX_COMMENTS + 1) > MAX_COMMENTS) {
    throw new XmlRejectedError(`more than ${MAX_COMMENTS} comments or processing instructions`);
  }
  // The first warning or error stops the parser (thrown out of it): only noted, it let the parser
  // go on through every later problem, each extra root element costing a walk of the Document's
  // children (80,000 `<a/>` after a response: minutes of blocked event loop).
  const stop = (): never => {
    throw new XmlRejectedError('not well-formed XML');
  };
  const parser = new DOMParser({ errorHandler: { warning: stop, error: stop, fatalError: stop } });
  let doc: Document;
  try {
    doc = parser.parseFromString(xml, 'text/xml');
  } catch {
    throw new XmlRejectedError('not well-formed XML');
  }
  if (!doc || !doc.documentElement) throw new XmlRejectedError('not well-formed XML');
  checkShape(doc.documentElement);
  return doc;
}

/**
 * At most this many nodes in a document, and children of one element. A Maestrano response is
 * a few hundred nodes; node-saml's XPath (xpath 0.0.x) sorts matched nodes in worse than
 * quadratic time, so an unsigned response with tens of thousands of siblings would block the
 * event loop for minutes before its signature is even looked at.
 */
const MAX_NODES = 5_000;
const MAX_CHILDREN = 500;
/**
 * At most this many attributes on one element (namespace declarations included) and namespace
 * declarations in a document. A Maestrano response has fewer than 15 of either. The Response
 * element is not signed: 40,000 declarations on it fit in the body limit, and xml-crypto
 * canonicalises the signed assertion against every namespace in scope in worse than linear
 * time, blocking the event loop for 5 to 10 s per POST, before any time or replay check.
 */
const MAX_ATTRIBUTES = 100;
const MAX_NAMESPACE_DECLARATIONS = 200;
/** At most this many comments, and processing instructions, in a document (a SAML response has none, or the XML declaration). */
const MAX_COMMENTS = 100;

/** How many times `needle` occurs in `text`, counting no further than `stopAt`. */
function countOccurrences(text: string, needle: string, stopAt: number): number {
  let count = 0;
  for (let at = text.indexOf(needle); at !== -1 && count < stopAt; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

/** Refuses documents wider or larger than any SAML response (walked iteratively: no stack depth). */
function checkShape(root: Element): void {
  let nodes = 0;
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (isElement(node) && node.attributes.length > MAX_ATTRIBUTES) {
      throw new XmlRejectedError(`an element with more than ${MAX_ATTRIBUTES} attributes`);
    }
    let children = 0;
    for (let c = node.firstChild; c !== null; c = c.nextSibling) {
      children++;
      if (++nodes > MAX_NODES) throw new XmlRejectedError(`more than ${MAX_NODES} nodes`);
      if (children > MAX_CHILDREN) throw new XmlRejectedError(`an element with more than ${MAX_CHILDREN} children`);
      if (c.nodeType === 1) stack.push(c);
    }
  }
}

export function isElement(node: Node | null): node is Element {
  return node !== null && node.nodeType === 1;
}

/** Direct element children of `parent` with that namespace and local name. */
export function children(parent: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) {
    if (isElement(n) && n.localName === localName && n.namespaceURI === ns) out.push(n);
  }
  return out;
}

export function child(parent: Element, ns: string, localName: string): Element | null {
  return children(parent, ns, localName)[0] ?? null;
}

/** Every element of the document (any depth) with that local name, whatever its namespace. */
export function descendantsByLocalName(root: Document | Element, localName: string): Element[] {
  const out: Element[] = [];
  const list = root.getElementsByTagNameNS('*', localName);
  for (let i = 0; i < list.length; i++) {
    const el = list.item(i);
    if (el) out.push(el);
  }
  return out;
}

export function text(el: Element | null): string | null {
  if (!el) return null;
  return (el.textContent ?? '').trim();
}

/** Attribute value or null when absent. */
export function attr(el: Element | null, name: string): string | null {
  if (!el?.hasAttribute(name)) return null;
  return el.getAttribute(name);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text or an attribute value for XML. */
export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
