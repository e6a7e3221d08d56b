"""mnist_core: MNIST data, the model registry, a training engine that runs outside the page, evaluation
and drawn-digit prediction. Importing it does not import TensorFlow; only training, evaluation and
prediction do."""
