/// A walk over the metadata that libhdf5 follows when it lists a file's objects and opens them
/// by name, done on the file's bytes before libhdf5 sees them.
///
/// libhdf5 (Debian's 1.10.8) trusts that metadata. Under scripts/fuzz.sh it copied from address
/// 0 (heap data at an undefined address or over its own header, a shared message with no
/// shared-message table), allocated the 16 GiB a heap header claimed, read a link name past its
/// heap's end, took one heap's data for another's and read names at address 8, divided by a
/// chunk size of 0, and listed a group inside itself until memory ran out. So every structure
/// on the way to every object is checked here first: the superblock; each object header (one
/// link to it) with its message framing and continuation chunks; each group's contents
/// (belonging to one header, at most 64 deep, paths at most 4096 bytes): B-tree nodes (each
/// reached once, one level down), symbol table nodes and local heap (data owned by that heap
/// alone, free list inside it, every link name and key NUL-terminated inside it); and each
/// message a checkpoint holds (dataspace, datatype, fill value, layout, and the global heap
/// objects a variable-length string refers to).
///
/// Only what libhdf5 writes by default, and Lorikeet writes, passes: superblock version 0 or 1
/// at byte 0 with base address 0, version 1 object headers, symbol-table groups, contiguous or
/// compact layouts. Newer formats, shared messages, filters, external storage and chunked
/// layouts are refused by name rather than passed on unchecked. libhdf5 is still trusted with
/// the fields inside the accepted messages beyond what is checked here (a datatype's bit
/// layout, say); `HDF5Archive.checkStorage` checks where a dataset's bytes lie before each read.
struct HDF5StructureCheck {
    /// Why a file was refused, in words that name the structure and its byte offset.
    struct Problem: Error {
        let reason: String
    }

    let raw: UnsafeRawBufferPointer
    /// Sizes of an address and a length in this file (2, 4 or 8 bytes).
    let offsets: Int
    let lengths: Int
    /// Symbol table nodes hold up to 2·leafK entries; group B-tree nodes up to 2·internalK children.
    let leafK: Int
    let internalK: Int
    let rootHeader: UInt64
    /// The root's cached symbol table (B-tree and heap), when its superblock entry caches one.
    let rootCache: (btree: UInt64, heap: UInt64)?

    /// Object headers walked so far: each is walked once.
    private var headersSeen = Set<UInt64>()
    private var structures = 0
    private var heaps: [UInt64: Heap] = [:]
    private var collections: [UInt64: [UInt64: UInt64]] = [:]
    /// Which heap owns each data segment: libhdf5 caches a segment by its address, so a second
    /// heap naming the same one got no data at all (it read names from address 0 + offset).
    private var heapOfData: [UInt64: UInt64] = [:]
    /// Keys, entries and messages read so far: with `structures`, what bounds the walk's time.
    private var work = 0
    private var pendingHeaders: [(address: UInt64, place: Place)] = []
    /// A group's contents (B-tree and heap) with the object header they belong to.
    private var pendingGroups: [(btree: UInt64, heap: UInt64, owner: UInt64, place: Place)] = []
    /// The header each group's contents belong to: a second header with the same contents made
    /// libhdf5 list the group inside itself without end.
    private var groupOwners: [GroupContents: UInt64] = [:]
    /// Bytes of all objects' full paths so far: H5Lvisit builds every one of them.
    private var pathBytes = 0

    /// Where an object sits: the length of its full path ("a/b/c") and how many groups deep.
    struct Place {
        var path = 0
        var depth = 0
    }

    /// Groups nest at most this deep (libhdf5 recurses once per level), and all paths together
    /// take at most `maxPathBytes`: H5Lvisit built paths without end for a group linked into itself.
    static let maxDepth = 64
    static let maxPathBytes = 1 << 26

    /// A local heap's data, and the last NUL in it: a string starting at or before that offset ends inside.
    struct Heap {
        let data: Range<Int>
        let lastNul: Int?
    }

    /// A group's contents: its B-tree's root node and its local heap.
    private struct GroupContents: Hashable {
        let btree: UInt64
        let heap: UInt64
    }

    /// At most this many headers and groups, and this much work (keys, entries, messages, heap
    /// objects) per file: far above what the objects `HDF5Archive` reads (`maxObjects`) need;
    /// they bound the walk's time and memory on a hostile file.
    static let maxStructures = 1 << 22
    static let maxWork = 1 << 25
    /// A group B-tree deeper than this is damage (2·K children per level).
    static let maxLevel = 32

    /// Checks the whole structure of the file whose bytes are `raw`.
    static func check(_ raw: UnsafeRawBufferPointer) throws(Problem) {
        var walk = try HDF5StructureCheck(raw)
        try walk.run()
    }

    init(_ raw: UnsafeRawBufferPointer) throws(Problem) {
        self.raw = raw
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        guard raw.count >= 16, raw.prefix(8).elementsEqual(signature) else {
            throw Problem(reason: "its HDF5 superblock is not at the start of the file (Lorikeet writes it there)")
        }
        let version = Int(raw[8])
        guard version <= 1 else {
            throw Problem(reason: "its superblock is version \(version); Lorikeet reads versions 0 and 1 (what libhdf5 writes by default)")
        }
        offsets = Int(raw[13])
        lengths = Int(raw[14])
        guard [2, 4, 8].contains(offsets), [2, 4, 8].contains(lengths) else {
            throw Problem(reason: "its superblock gives \(offsets)-byte addresses and \(lengths)-byte lengths")
        }
        // Version 1 adds 4 bytes (indexed storage K and reserved) after the consistency flags.
        let addresses = version == 0 ? 24 : 28
        let entry = addresses + 4 * offsets
        guard raw.count >= entry + Self.entrySize(offsets) else {
            throw Problem(reason: "the file ends inside its \(entry + Self.entrySize(offsets))-byte superblock")
        }
        let field = { (at: Int, size: Int) -> UInt64 in Self.field(raw, at, size) }
        leafK = Int(field(16, 2))
        internalK = Int(field(18, 2))
        guard leafK > 0, internalK > 0 else {
            throw Problem(reason: "its superblock gives group node sizes K of \(leafK) and \(internalK) (at least 1)")
        }
        let undefined = Self.undefined(offsets)
        guard field(addresses, offsets) == 0 else {
            throw Problem(reason: "its superblock gives a base address of \(field(addresses, offsets)) (Lorikeet writes 0)")
        }
        guard field(addresses + 3 * offsets, offsets) == undefined else {
            throw Problem(reason: "its superblock points at a driver information block (Lorikeet writes none)")
        }
        rootHeader = field(entry + offsets, offsets)
        switch field(entry + 2 * offsets, 4) {
        case 0: rootCache = nil
        case 1: rootCache = (field(entry + 2 * offsets + 8, offsets), field(entry + 3 * offsets + 8, offsets))
        case let other: throw Problem(reason: "the root group's entry in the superblock has cache type \(other) (0 or 1)")
        }
    }

    /// Bytes of one symbol table entry: name offset, header address, cache type, reserved, scratch.
    static func entrySize(_ offsets: Int) -> Int { 2 * offsets + 24 }

    static func undefined(_ size: Int) -> UInt64 { size == 8 ? UInt64.max : (UInt64(1) << (8 * UInt64(size))) - 1 }

    /// The little-endian unsigned field of `size` bytes at `at` (the caller has checked the range).
    static func field(_ raw: UnsafeRawBufferPointer, _ at: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { $0 | UInt64(raw[at + $1]) << (8 * UInt64($1)) }
    }

    func field(_ at: Int, _ size: Int) -> UInt64 { Self.field(raw, at, size) }

    /// The byte range `length` bytes long at `address`, or a problem naming `what` when any of
    /// it is outside the file (an undefined address included).
    func region(_ address: UInt64, _ length: Int, _ what: @autoclosure () -> String) throws(Problem) -> Range<Int> {
        guard address != Self.undefined(offsets), address <= UInt64(raw.count), length >= 0,
              UInt64(length) <= UInt64(raw.count) - address else {
            let at = address == Self.undefined(offsets) ? "an undefined address" : "address \(address)"
            throw Problem(reason: "\(what()) claims \(length) bytes at \(at), outside the \(raw.count)-byte file")
        }
        return Int(address)..<(Int(address) + length)
    }

    func matches(_ at: Int, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return at + bytes.count <= raw.count && raw[at..<(at + bytes.count)].elementsEqual(bytes)
    }

    /// False when the object header was walked before.
    private mutating func visitHeader(_ address: UInt64) throws(Problem) -> Bool {
        guard headersSeen.insert(address).inserted else { return false }
        try countStructure()
        return true
    }

    private mutating func countStructure() throws(Problem) {
        structures += 1
        guard structures <= Self.maxStructures else {
            throw Problem(reason: "it holds more than \(Self.maxStructures) headers and groups")
        }
    }

    /// Counts one key, entry or message against `maxWork`.
    private mutating func step() throws(Problem) {
        work += 1
        guard work <= Self.maxWork else {
            throw Problem(reason: "its groups and headers take more than \(Self.maxWork) steps to walk")
        }
    }

    mutating func run() throws(Problem) {
        pendingHeaders.append((rootHeader, Place()))
        if let rootCache { pendingGroups.append((rootCache.btree, rootCache.heap, rootHeader, Place())) }
        while true {
            if let group = pendingGroups.popLast() {
                try walkGroup(btree: group.btree, heap: group.heap, owner: group.owner, place: group.place)
            } else if let header = pendingHeaders.popLast() {
                try walkHeader(header.address, place: header.place)
            } else {
                return
            }
        }
    }

    /// One version 1 object header: 16 bytes of prefix, then messages (type, size, flags, three
    /// reserved bytes, data) filling chunk 0 and any continuation chunks exactly. Symbol table
    /// messages make the object a group to walk; link messages (the newer group format) are refused.
    mutating func walkHeader(_ address: UInt64, place: Place) throws(Problem) {
        // One link per object, as Lorikeet writes: a group linked into itself made H5Lvisit build
        // ever longer paths (libhdf5 tracks visited objects only when their link count says so).
        guard try visitHeader(address) else {
            throw Problem(reason: "the object header at byte \(address) is named by a second link (a loop or a hard link; Lorikeet writes one name per object)")
        }
        let prefix = try region(address, 16, "an object header")
        if matches(prefix.lowerBound, "OHDR") {
            throw Problem(reason: "the object header at byte \(address) is version 2; Lorikeet reads version 1 (what libhdf5 writes by default)")
        }
        guard raw[prefix.lowerBound] == 1 else {
            throw Problem(reason: "the object header at byte \(address) has version \(raw[prefix.lowerBound]) (Lorikeet reads 1)")
        }
        let size = Int(field(prefix.lowerBound + 8, 4))
        var chunks = [try region(address + 16, size, "the object header at byte \(address)")]
        var chunkStarts: Set<Int> = [chunks[0].lowerBound]  // a chunk read twice is a loop
        var messages = 0
        var variableStrings = false, stored: Range<Int>? = nil  // what the dataset's strings refer to
        while let chunk = chunks.popLast() {
            var at = chunk.lowerBound
            while at < chunk.upperBound {
                guard chunk.upperBound - at >= 8 else {
                    throw Problem(reason: "the object header at byte \(address) ends a chunk with \(chunk.upperBound - at) bytes that are not a message")
                }
                let type = field(at, 2), length = Int(field(at + 2, 2)), data = at + 8
                guard length <= chunk.upperBound - data else {
                    throw Problem(reason: "the object header at byte \(address) has a message of \(length) bytes at byte \(at) running past its chunk")
                }
                messages += 1
                try step()
                guard messages <= 1 << 16 else { throw Problem(reason: "the object header at byte \(address) holds more than 65,536 messages") }
                guard raw[at + 4] & 0x02 == 0 || type == 0x0C else {
                    throw Problem(reason: "the object header at byte \(address) has a shared message of type \(type) (Lorikeet writes none)")
                }
                let message = data..<(data + length)
                switch type {
                case 0x00, 0x0C, 0x0D, 0x0E, 0x12:  // nil, attribute, comment, modification times: not read on open
                    break
                case 0x01:
                    try checkDataspace(message, header: address)
                case 0x03:
                    variableStrings = try checkDatatype(message, header: address) || variableStrings
                case 0x04, 0x05:
                    try checkFillValue(message, old: type == 0x04, header: address)
                case 0x08:
                    stored = try checkLayout(message, header: address)
                case 0x10:  // continuation: another chunk of messages
                    guard length >= offsets + lengths else { throw Problem(reason: "the object header at byte \(address) has a short continuation message") }
                    let next = field(data, offsets), nextLength = field(data + offsets, lengths)
                    guard nextLength <= UInt64(raw.count) else {
                        throw Problem(reason: "the object header at byte \(address) continues \(nextLength) bytes at \(next), outside the \(raw.count)-byte file")
                    }
                    let continued = try region(next, Int(nextLength), "a continuation of the object header at byte \(address)")
                    guard chunkStarts.insert(continued.lowerBound).inserted else {
                        throw Problem(reason: "the object header at byte \(address) continues twice at byte \(next) (a loop)")
                    }
                    chunks.append(continued)
                case 0x11:  // symbol table: this object is a group
                    guard length >= 2 * offsets else { throw Problem(reason: "the object header at byte \(address) has a short symbol table message") }
                    pendingGroups.append((field(data, offsets), field(data + offsets, offsets), address, place))
                case 0x02, 0x06:  // link info, link: the newer group format
                    throw Problem(reason: "the object at byte \(address) is a group in HDF5's newer link format; Lorikeet reads symbol-table groups (what libhdf5 writes by default)")
                default:  // filters, external files, group info, …
                    throw Problem(reason: "the object header at byte \(address) has a message of type \(type), which Lorikeet does not read (filters, external storage and newer formats are refused)")
                }
                at = data + length
            }
        }
        if variableStrings, let stored { try checkStringReferences(stored, header: address) }
    }

    func short(_ what: String, _ header: UInt64) -> Problem {
        Problem(reason: "the object header at byte \(header) has a \(what) message too short for what it declares")
    }

    /// A dataspace (versions 1 and 2): rank at most 32, its sizes (and maximum sizes, when
    /// flagged) inside the message.
    func checkDataspace(_ message: Range<Int>, header: UInt64) throws(Problem) {
        guard message.count >= 4 else { throw short("dataspace", header) }
        let version = raw[message.lowerBound], rank = Int(raw[message.lowerBound + 1]), flags = raw[message.lowerBound + 2]
        guard version == 1 || version == 2, rank <= 32 else {
            throw Problem(reason: "the object header at byte \(header) has a dataspace of version \(version) and rank \(rank) (versions 1–2, rank at most 32)")
        }
        let sizes = (version == 1 ? 8 : 4) + rank * lengths * (flags & 1 == 1 ? 2 : 1)
        guard sizes <= message.count else { throw short("dataspace", header) }
    }

    /// A datatype of a class Lorikeet reads or names in its refusal: fixed-point and floating
    /// point numbers (class 0, 1), strings (3) and variable-length strings of 1-byte
    /// characters (9). Other classes (compound, array, enum, reference, …) have decoders of
    /// their own in libhdf5 and no place in a checkpoint. Returns true for a variable-length string.
    func checkDatatype(_ message: Range<Int>, header: UInt64) throws(Problem) -> Bool {
        guard message.count >= 8 else { throw short("datatype", header) }
        let kind = raw[message.lowerBound] & 0x0F, version = raw[message.lowerBound] >> 4
        let size = field(message.lowerBound + 4, 4)
        let properties = [0: 4, 1: 12, 3: 0, 9: 12][Int(kind)]  // a vlen's base type: 8 bytes and 4 of fixed-point properties
        guard let properties, (1...3).contains(version), size > 0 else {
            throw Problem(reason: "the object header at byte \(header) has a datatype of class \(kind) (version \(version), \(size) bytes); Lorikeet reads numbers and strings")
        }
        guard 8 + properties <= message.count else { throw short("datatype", header) }
        if kind == 9 {  // its base type follows: one-byte characters
            let base = message.lowerBound + 8
            guard raw[message.lowerBound + 1] & 0x0F == 1, raw[base] & 0x0F == 0, field(base + 4, 4) == 1 else {
                throw Problem(reason: "the object header at byte \(header) has a variable-length type that is not a string of 1-byte characters")
            }
        }
        return kind == 9
    }

    /// A fill value (old: size and bytes; new, versions 1–3: a size and bytes when defined)
    /// whose bytes fit the message.
    func checkFillValue(_ message: Range<Int>, old: Bool, header: UInt64) throws(Problem) {
        let at: Int
        if old {
            at = message.lowerBound
        } else {
            guard message.count >= 2 else { throw short("fill value", header) }
            switch raw[message.lowerBound] {
            case 1, 2:
                guard message.count >= 4 else { throw short("fill value", header) }
                guard raw[message.lowerBound + 3] != 0 || raw[message.lowerBound] == 1 else { return }
                at = message.lowerBound + 4
            case 3:
                guard raw[message.lowerBound + 1] & 0x20 != 0 else { return }
                at = message.lowerBound + 2
            case let version:
                throw Problem(reason: "the object header at byte \(header) has a fill value message of version \(version) (1 to 3)")
            }
        }
        guard at + 4 <= message.upperBound, field(at, 4) <= UInt64(message.upperBound - at - 4) else { throw short("fill value", header) }
    }

    /// A layout of version 3 (what libhdf5 writes unless told to write newer files), contiguous
    /// (address and length) or compact (bytes inside the message). Chunked layouts are refused:
    /// Lorikeet never writes them, and reading one runs chunk B-trees and filters inside
    /// libhdf5 (a chunked layout of rank 0 made it divide by zero under the fuzzer).
    /// Returns where the data lies: the compact bytes, the contiguous run (nil before the first
    /// write; `HDF5Archive.checkStorage` checks it against the dataset's size before a read).
    func checkLayout(_ message: Range<Int>, header: UInt64) throws(Problem) -> Range<Int>? {
        guard message.count >= 2 else { throw short("layout", header) }
        let version = raw[message.lowerBound], kind = raw[message.lowerBound + 1]
        guard version == 3 else {
            throw Problem(reason: "the object header at byte \(header) has a layout message of version \(version) (Lorikeet reads 3, what libhdf5 writes by default)")
        }
        switch kind {
        case 0:  // compact: a 2-byte size, then the bytes
            let size = message.count >= 4 ? Int(field(message.lowerBound + 2, 2)) : Int.max
            guard size <= message.count - 4 else { throw short("layout", header) }
            return (message.lowerBound + 4)..<(message.lowerBound + 4 + size)
        case 1:  // contiguous: address and size
            guard message.count >= 2 + offsets + lengths else { throw short("layout", header) }
            let address = field(message.lowerBound + 2, offsets), size = field(message.lowerBound + 2 + offsets, lengths)
            guard address != Self.undefined(offsets) else { return nil }
            guard size <= UInt64(raw.count) else {
                throw Problem(reason: "the object header at byte \(header) stores \(size) bytes, more than the \(raw.count)-byte file")
            }
            return try region(address, Int(size), "the dataset of the object header at byte \(header)")
        default:
            throw Problem(reason: "the object header at byte \(header) has a \(kind == 2 ? "chunked" : "virtual") layout; Lorikeet reads contiguous and compact datasets (what it writes)")
        }
    }

    /// A variable-length string's stored references (length, global heap collection address,
    /// object index): each names an object of at least that length in a well-formed collection.
    /// libhdf5 reads the collection and copies the object when the string is read.
    mutating func checkStringReferences(_ stored: Range<Int>, header: UInt64) throws(Problem) {
        let reference = 8 + offsets
        var at = stored.lowerBound
        while at + reference <= stored.upperBound {
            try step()
            let length = field(at, 4), collection = field(at + 4, offsets), index = field(at + 4 + offsets, 4)
            at += reference
            if length == 0, collection == 0 || collection == Self.undefined(offsets) { continue }  // an empty string
            let objects = try globalHeap(collection)
            guard let size = objects[index], length <= size else {
                throw Problem(reason: "a string of the object header at byte \(header) refers to object \(index) of the global heap at byte \(collection) for \(length) bytes, which it does not hold")
            }
        }
    }

    /// A global heap collection ("GCOL", version 1): its objects (index, reference count,
    /// reserved, size, data padded to 8 bytes) and its free space (index 0) inside it, each
    /// index once. Returns each object's size by index.
    mutating func globalHeap(_ address: UInt64) throws(Problem) -> [UInt64: UInt64] {
        if let known = collections[address] { return known }
        let header = try region(address, 8 + lengths, "a global heap collection")
        guard matches(header.lowerBound, "GCOL"), raw[header.lowerBound + 4] == 1 else {
            throw Problem(reason: "the global heap collection at byte \(address) is not one (signature, version 1)")
        }
        let size = field(header.lowerBound + 8, lengths)
        guard size >= UInt64(8 + lengths), size <= UInt64(raw.count) else {
            throw Problem(reason: "the global heap collection at byte \(address) claims \(size) bytes")
        }
        let collection = try region(address, Int(size), "the global heap collection at byte \(address)")
        var objects: [UInt64: UInt64] = [:]
        var at = header.upperBound
        // libhdf5 takes a tail too short for an object header as free space.
        while collection.upperBound - at >= 8 + lengths {
            try step()
            let index = field(at, 2), objectSize = field(at + 8, lengths)
            // An object's size counts its data (padded to 8 bytes); the free-space object's
            // (index 0) counts its header too and must at least cover it, or libhdf5 would not move on.
            let span = index == 0 ? objectSize : UInt64(8 + lengths) + ((objectSize + 7) & ~7)
            guard objectSize <= UInt64(raw.count), span >= UInt64(8 + lengths), span <= UInt64(collection.upperBound - at) else {
                throw Problem(reason: "object \(index) of the global heap collection at byte \(address) runs past its end")
            }
            if index != 0, objects.updateValue(objectSize, forKey: index) != nil {
                throw Problem(reason: "the global heap collection at byte \(address) holds object \(index) twice")
            }
            at += Int(span)
        }
        collections[address] = objects
        return objects
    }

    /// One group: its local heap, then its B-tree from the root node down, each node's keys
    /// naming strings in the heap, each leaf's children symbol table nodes. Each node must be
    /// reached once, one level down: libhdf5 follows a loop until its stack overflows (a segfault
    /// in this file's tests), and a node shared by many parents multiplies its work per level.
    mutating func walkGroup(btree: UInt64, heap: UInt64, owner: UInt64, place: Place) throws(Problem) {
        guard place.depth < Self.maxDepth else {
            throw Problem(reason: "its groups nest more than \(Self.maxDepth) deep")
        }
        // Once per group: its header's symbol table message and a cached copy name the same contents.
        if let first = groupOwners.updateValue(owner, forKey: GroupContents(btree: btree, heap: heap)) {
            guard first == owner else {
                throw Problem(reason: "the objects at bytes \(first) and \(owner) hold the same group (B-tree at byte \(btree)), so it would list itself")
            }
            return
        }
        try countStructure()
        let names = try localHeap(heap)
        var reached = Set<UInt64>()  // B-tree and symbol table nodes of this group
        var nodes: [(address: UInt64, level: Int?)] = [(btree, nil)]
        while let (address, expected) = nodes.popLast() {
            guard reached.insert(address).inserted else {
                throw Problem(reason: "the group B-tree node at byte \(address) is reached twice in one group (a loop or a shared node)")
            }
            let nodeSize = 8 + 2 * offsets + (2 * internalK + 1) * lengths + 2 * internalK * offsets
            let node = try region(address, nodeSize, "a group B-tree node")
            guard matches(node.lowerBound, "TREE"), raw[node.lowerBound + 4] == 0 else {
                throw Problem(reason: "the group B-tree node at byte \(address) is not one (signature or node type)")
            }
            let level = Int(raw[node.lowerBound + 5]), used = Int(field(node.lowerBound + 6, 2))
            guard level <= Self.maxLevel, expected == nil || expected == level, used <= 2 * internalK else {
                throw Problem(reason: "the group B-tree node at byte \(address) has level \(level) and \(used) children (at most \(2 * internalK))")
            }
            // Keys and children alternate: key 0, child 0, …, child used−1, key used.
            var at = node.lowerBound + 8 + 2 * offsets
            for index in 0...used {
                try step()
                try name(at: field(at, lengths), in: names, heap: heap, what: "key \(index) of the group B-tree node at byte \(address)")
                at += lengths
                guard index < used else { break }
                let child = field(at, offsets)
                at += offsets
                if level > 0 {
                    nodes.append((child, level - 1))
                } else {
                    guard reached.insert(child).inserted else {
                        throw Problem(reason: "the symbol table node at byte \(child) is reached twice in one group (a loop or a shared node)")
                    }
                    try symbolNode(child, names: names, heap: heap, parent: place)
                }
            }
        }
    }

    /// One symbol table node ("SNOD", version 1): each entry's name in the group's heap, its
    /// object header to walk, and the group's B-tree and heap its scratch pad may cache. Soft
    /// links (cache type 2) are refused.
    mutating func symbolNode(_ address: UInt64, names: Heap, heap: UInt64, parent: Place) throws(Problem) {
        let entry = Self.entrySize(offsets)
        let node = try region(address, 8 + 2 * leafK * entry, "a symbol table node")
        guard matches(node.lowerBound, "SNOD"), raw[node.lowerBound + 4] == 1 else {
            throw Problem(reason: "the symbol table node at byte \(address) is not one (signature or version)")
        }
        let count = Int(field(node.lowerBound + 6, 2))
        guard count <= 2 * leafK else {
            throw Problem(reason: "the symbol table node at byte \(address) lists \(count) entries (at most \(2 * leafK))")
        }
        for index in 0..<count {
            let at = node.lowerBound + 8 + index * entry
            let what = "entry \(index) of the symbol table node at byte \(address)"
            try step()
            let offset = field(at, offsets)
            try name(at: offset, in: names, heap: heap, what: what)
            // The name ends inside the heap (checked); its length, looked for up to the limit.
            let start = names.data.lowerBound + Int(offset)
            let end = min(names.data.upperBound, start + HDF5Archive.maxNameBytes + 1)
            let length = raw[start..<end].firstIndex(of: 0).map { $0 - start } ?? HDF5Archive.maxNameBytes + 1
            let place = Place(path: parent.path + (parent.path > 0 ? 1 : 0) + length, depth: parent.depth + 1)
            pathBytes += place.path
            guard place.path <= HDF5Archive.maxNameBytes, pathBytes <= Self.maxPathBytes else {
                throw Problem(reason: place.path > HDF5Archive.maxNameBytes
                    ? "\(what) makes an object path over \(HDF5Archive.maxNameBytes) bytes long"
                    : "its object paths take more than \(Self.maxPathBytes) bytes together")
            }
            pendingHeaders.append((field(at + offsets, offsets), place))
            let scratch = at + 2 * offsets + 8
            switch field(at + 2 * offsets, 4) {
            case 0: break
            case 1: pendingGroups.append((field(scratch, offsets), field(scratch + offsets, offsets), field(at + offsets, offsets), place))
            case 2:  // a soft link: H5Lvisit followed one naming its own group ("") without end
                throw Problem(reason: "\(what) is a soft link (Lorikeet writes none; one naming its own group made libhdf5 list it without end)")
            case let other: throw Problem(reason: "\(what) has cache type \(other) (0 or 1)")
            }
        }
    }

    /// A string starting `offset` bytes into a group's heap data must end (NUL) inside it.
    func name(at offset: UInt64, in names: Heap, heap: UInt64, what: @autoclosure () -> String) throws(Problem) {
        guard let last = names.lastNul, offset <= UInt64(last) else {
            throw Problem(reason: "\(what()) names a string at offset \(offset) that does not end inside the \(names.data.count)-byte local heap at byte \(heap)")
        }
    }

    /// A local heap ("HEAP", version 0): its data inside the file and off its own header, and
    /// its free list (offset of the next free block, size; 1 ends it) inside the data, acyclic.
    /// Returns where its data lies.
    mutating func localHeap(_ address: UInt64) throws(Problem) -> Heap {
        if let known = heaps[address] { return known }
        let headerSize = (8 + 2 * lengths + offsets + 7) & ~7
        let header = try region(address, headerSize, "a local heap")
        guard matches(header.lowerBound, "HEAP"), raw[header.lowerBound + 4] == 0,
              raw[(header.lowerBound + 5)..<(header.lowerBound + 8)].allSatisfy({ $0 == 0 }) else {
            throw Problem(reason: "the local heap at byte \(address) is not one (signature, version 0)")
        }
        let size = field(header.lowerBound + 8, lengths), free = field(header.lowerBound + 8 + lengths, lengths)
        let dataAddress = field(header.lowerBound + 8 + 2 * lengths, offsets)
        guard size <= UInt64(raw.count) else {
            throw Problem(reason: "a local heap at byte \(address) claims \(size) bytes, more than the \(raw.count)-byte file")
        }
        let data = try region(dataAddress, Int(size), "the local heap at byte \(address)")
        // An overlap with its own header also sent libhdf5 to address 0.
        guard data.upperBound <= header.lowerBound || data.lowerBound >= header.lowerBound + 8 + 2 * lengths + offsets else {
            throw Problem(reason: "the local heap at byte \(address) puts its data over its own header")
        }
        if let owner = heapOfData.updateValue(address, forKey: dataAddress), owner != address {
            throw Problem(reason: "the local heaps at bytes \(owner) and \(address) share their data at byte \(dataAddress)")
        }
        var block = free, blocks = Set<UInt64>()
        while block != 1 {
            let leaves = Problem(reason: "the free list of the local heap at byte \(address) leaves its \(size)-byte data or loops")
            guard block < size, UInt64(2 * lengths) <= size - block, blocks.insert(block).inserted else { throw leaves }
            try step()
            let at = data.lowerBound + Int(block)
            guard field(at + lengths, lengths) <= size - block else { throw leaves }
            block = field(at, lengths)
        }
        let known = Heap(data: data, lastNul: raw[data].lastIndex(of: 0).map { $0 - data.lowerBound })
        heaps[address] = known
        return known
    }
}
