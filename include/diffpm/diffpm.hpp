/// \file
/// \brief Umbrella header: a user's first program includes only this.
#pragma once

#include "diffpm/autodiff/dual.hpp"
#include "diffpm/core/constants.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/host_device.hpp"
#include "diffpm/core/scalar.hpp"
#include "diffpm/cosmology/background.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/growth.hpp"
#include "diffpm/cosmology/linear_power.hpp"
#include "diffpm/cosmology/parameters.hpp"
#include "diffpm/cosmology/power_table.hpp"
#include "diffpm/cosmology/tophat_variance.hpp"
#include "diffpm/cosmology/transfer_bbks.hpp"
#include "diffpm/cosmology/transfer_eisenstein_hu.hpp"
#include "diffpm/io/text_table.hpp"
