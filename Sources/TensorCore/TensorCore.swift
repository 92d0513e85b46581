public enum TensorCorePlaceholder {}
