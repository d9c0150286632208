using Identity.Core.Keys;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Data;

/// <summary>
/// The one database context of the authority: ASP.NET Core Identity, OpenIddict's entities,
/// data-protection keys and signing keys share it (and, later, audit and outbox).
/// </summary>
public sealed class AuthorityDbContext(DbContextOptions<AuthorityDbContext> options)
    : IdentityDbContext<ApplicationUser>(options), IDataProtectionKeyContext
{
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();

        builder.Entity<ApplicationUser>().Property(u => u.DisplayName).HasMaxLength(200);

        builder.Entity<SigningKey>(key =>
        {
            key.ToTable("SigningKeys");
            key.HasKey(k => k.Slot);
            key.Property(k => k.Slot).HasMaxLength(64);
            key.Property(k => k.KeyId).HasMaxLength(64);
            key.HasIndex(k => k.KeyId).IsUnique();
            key.Property(k => k.Algorithm).HasMaxLength(16);
            key.Property(k => k.ProtectedMaterial).HasMaxLength(16_000);
        });
    }
}
