"""Networks: the ResNet18 encoder, the depth U-Net and the pose network."""

from selfdepth.models.depth import DepthDecoder, DepthNet, check_input_size
from selfdepth.models.encoder import ResnetEncoder, load_imagenet_weights
from selfdepth.models.pose import PoseDecoder, PoseNet

__all__ = ["DepthDecoder", "DepthNet", "PoseDecoder", "PoseNet", "ResnetEncoder", "check_input_size", "load_imagenet_weights"]
