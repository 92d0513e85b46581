import Formats
import Training

/// Writes a Lorikeet checkpoint holding the adapter tensors of a safetensors file (PEFT names)
/// under the recipe that `overrides` make of the defaults, with `base/…` strings as given:
/// what `lorikeet export` and `merge` read when an adapter was trained here.
func writeAdapterCheckpoint(to path: String, overrides: [String], base: [String: String], adapterTensors safetensors: String) throws {
    var document = RecipeDocument()
    for s in overrides { try document.override(s) }
    var archive = HDF5Archive()
    archive.strings["recipe"] = try Recipe(document).yaml
    for (key, value) in base { archive.strings["base/" + key] = value }
    for (name, tensor) in try SafetensorsFile(path: safetensors).tensors() {
        archive.floatArrays["adapter/" + name] = .init(shape: tensor.shape, values: tensor.scalars)
    }
    try archive.write(to: path)
}
