using System.ComponentModel.DataAnnotations;

namespace Identity.Server.Account;

/// <summary>
/// The form of a page where a person chooses a password without proving an old one (an invitation, a reset link):
/// the new password twice. The account's rules are checked by the operation, not here; these attributes only keep
/// the input bounded and the two copies equal. The change-password form adds the current password to it.
/// </summary>
public class NewPasswordInput
{
    [Required, StringLength(512)]
    [DataType(DataType.Password)]
    [Display(Name = "New password")]
    public string NewPassword { get; set; } = "";

    [Required]
    [DataType(DataType.Password)]
    [Compare(nameof(NewPassword), ErrorMessage = "The two new passwords do not match.")]
    [Display(Name = "Confirm new password")]
    public string ConfirmPassword { get; set; } = "";
}
