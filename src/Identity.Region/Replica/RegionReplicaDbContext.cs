using Microsoft.EntityFrameworkCore;

namespace Identity.Region.Replica;

/// <summary>The regional service's own database for its copy of the region's users and accounts.</summary>
public sealed class RegionReplicaDbContext(DbContextOptions<RegionReplicaDbContext> options) : DbContext(options)
{
    public DbSet<ReplicaUser> ReplicaUsers => Set<ReplicaUser>();

    public DbSet<ReplicaAccount> ReplicaAccounts => Set<ReplicaAccount>();

    public DbSet<ReplicaState> ReplicaState => Set<ReplicaState>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<ReplicaUser>(user =>
        {
            user.HasKey(u => u.UserId);
            user.Property(u => u.UserId).HasMaxLength(128);
            user.Property(u => u.Email).HasMaxLength(256);
            user.Property(u => u.DisplayName).HasMaxLength(256);
            user.Property(u => u.Role).HasMaxLength(32);
            user.Property(u => u.Status).HasMaxLength(32);
            user.HasIndex(u => u.AccountId);
            user.HasIndex(u => u.Email);
        });

        modelBuilder.Entity<ReplicaAccount>(account =>
        {
            account.HasKey(a => a.AccountId);
            account.Property(a => a.Name).HasMaxLength(256);
            account.Property(a => a.Status).HasMaxLength(32);
            account.Property(a => a.Regions).HasMaxLength(1024);
            account.Property(a => a.MfaRequirement).HasMaxLength(32);
        });

        modelBuilder.Entity<ReplicaState>(state =>
        {
            state.HasKey(s => s.Id);
            state.Property(s => s.Id).ValueGeneratedNever();
        });
    }
}
