using Microsoft.AspNetCore.Identity;

namespace Identity.Core.Data;

/// <summary>A person who signs in at the authority. Accounts, roles and versions arrive with the admin API.</summary>
public sealed class ApplicationUser : IdentityUser
{
    public string? DisplayName { get; set; }
}
