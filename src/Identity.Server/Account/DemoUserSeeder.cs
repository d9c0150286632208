using System.Security.Cryptography;
using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The embedded default's demo user: created on a first run with no users, with a generated password shown once
/// on the console (never logged, never stored in clear). Real user management arrives with the admin API.
/// </summary>
public sealed class DemoUserSeeder(UserManager<ApplicationUser> users, IOptions<DatabaseOptions> database,
    IOptions<Clients.ClientCatalogueOptions> oidc)
{
    public const string DemoEmail = "demo@identity.local";

    /// <summary>120 random bits, plus the fixed "Demo-" and "9" so that every character class Identity asks for is present.</summary>
    internal static string NewPassword() =>
        "Demo-" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace("/", "_", StringComparison.Ordinal).Replace("+", "-", StringComparison.Ordinal) + "9";

    public async Task ApplyAsync()
    {
        if (database.Value.Provider != DatabaseProvider.Sqlite || !oidc.Value.SeedDemoClient || oidc.Value.Clients.Count > 0
            || users.Users.Any())
        {
            return;
        }

        var password = NewPassword();
        var user = new ApplicationUser { UserName = DemoEmail, Email = DemoEmail, EmailConfirmed = true, DisplayName = "Demo User" };
        var result = await users.CreateAsync(user, password);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("Could not create the demo user: " + string.Join("; ", result.Errors.Select(e => e.Description)));
        }

        Console.WriteLine($"""

            ==== Demo user (password shown once) ====
              email:    {DemoEmail}
              password: {password}
            =========================================

            """);
    }
}
